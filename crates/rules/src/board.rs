//! The live driver of the rules: ledgers of the orders still open in memory, re-evaluated one
//! order at a time as its facts arrive and as its next deadline passes, never by rescanning
//! them all.
//!
//! Facts are learned without judging ([`Board::learn`]); [`Board::judge`] then evaluates each
//! order they touched once, at the current time. A restart that learns the whole journal thus
//! judges every order once as of now, never as of each past fact. An order that nothing can
//! make diverge again without a new fact (no finding raised, no deadline ahead, past the window
//! in which a payment naming no order may still claim it) leaves the board; its next fact
//! brings it back from the journal ([`Board::recall`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use handoff_model::{Money, Pattern};
use jiff::Timestamp;

use crate::{Deadlines, Fact, Finding, Ledger, evaluate, fuzzy};

/// A finding that appeared or went away.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Raised {
        order_ref: String,
        finding: Finding,
    },
    /// The cause is gone: the exception resolves itself.
    Cleared {
        order_ref: String,
        pattern: Pattern,
        subject: String,
    },
}

struct Entry {
    ledger: Ledger,
    /// (pattern, subject) of the findings raised and not cleared.
    raised: Vec<(Pattern, String)>,
    next_check: Option<Timestamp>,
    /// When the order leaves the board, if it is settled.
    leave_at: Option<Timestamp>,
    /// Orders whose payments this one claimed by fuzzy keys: its ledger is rebuilt from their
    /// journal with its own, so it never leaves the board.
    absorbed: Vec<String>,
}

impl Entry {
    fn new(order_ref: &str) -> Self {
        Entry {
            ledger: Ledger::new(order_ref),
            raised: Vec::new(),
            next_check: None,
            leave_at: None,
            absorbed: Vec::new(),
        }
    }
}

pub struct Board {
    deadlines: Deadlines,
    /// Boxed: the map doubles as orders open, and moving a pointer a slot is what keeps that
    /// cheap (an entry is hundreds of bytes; at a webhook peak the doublings of a map of
    /// entries, the fresh pages they touched, took 4 % of the hub).
    orders: HashMap<String, Box<Entry>>,
    /// Orders to evaluate again at a time; an entry whose order has since moved its next check
    /// is skipped when it comes due.
    timers: BTreeMap<Timestamp, Vec<String>>,
    /// Payments that name no known order, by amount, waiting for an order to claim them
    /// (sets: many orders share a price, and each leaves the index on its own).
    unclaimed_payments: HashMap<Money, BTreeSet<String>>,
    /// Orders not yet paid, by total, for a payment that names no order.
    unpaid_orders: HashMap<Money, BTreeSet<String>>,
    /// Orders that learned a fact since they were last judged.
    touched: HashSet<String>,
    /// Settled orders, by when they leave the board; an order that moves its leaving time
    /// leaves its old slot.
    leaving: BTreeMap<Timestamp, Vec<String>>,
    /// Whether a payment that names no order can arrive (a payment system is in the
    /// contract): only then does a settled unpaid order wait on the board to be claimed.
    claims: bool,
}

impl Board {
    pub fn new(deadlines: Deadlines) -> Self {
        Board {
            deadlines,
            orders: HashMap::new(),
            timers: BTreeMap::new(),
            unclaimed_payments: HashMap::new(),
            unpaid_orders: HashMap::new(),
            touched: HashSet::new(),
            leaving: BTreeMap::new(),
            claims: true,
        }
    }

    /// A board for a contract where no payment can name no order: a settled order leaves at
    /// once instead of waiting for a payment to claim it.
    pub fn without_claims(mut self) -> Self {
        self.claims = false;
        self
    }

    pub fn contains(&self, order_ref: &str) -> bool {
        self.orders.contains_key(order_ref)
    }

    /// The orders whose journal rebuilds this board: those followed, and those whose payments
    /// they claimed (a checkpoint keeps this list).
    pub fn followed(&self) -> Vec<String> {
        let mut refs: Vec<String> = self.orders.keys().cloned().collect();
        refs.extend(self.orders.values().flat_map(|e| e.absorbed.iter().cloned()));
        refs.sort_unstable();
        refs.dedup();
        refs
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn ledger(&self, order_ref: &str) -> Option<&Ledger> {
        self.orders.get(order_ref).map(|e| &e.ledger)
    }

    /// The findings of one order as of `now`, without changing what was raised.
    pub fn findings(&self, order_ref: &str, now: Timestamp) -> Vec<Finding> {
        self.ledger(order_ref).map(|l| evaluate(l, &self.deadlines, now).findings).unwrap_or_default()
    }

    /// Learns one fact about `order_ref` and re-evaluates that order.
    pub fn apply(&mut self, order_ref: &str, fact: Fact, now: Timestamp, changes: &mut Vec<Change>) {
        self.learn(order_ref, fact, changes);
        self.judge_touched(now, changes);
    }

    /// Learns one fact about `order_ref` without judging it: [`Board::judge`] evaluates it once
    /// later. `changes` only receives the clearing of a payment's ledger claimed by an order.
    pub fn learn(&mut self, order_ref: &str, fact: Fact, changes: &mut Vec<Change>) {
        let placed = matches!(fact, Fact::Placed { .. });
        let payment = match &fact {
            Fact::Payment(p) => Some(p.amount),
            _ => None,
        };
        // Most facts are about an order already followed: look up before allocating a key.
        if !self.touched.contains(order_ref) {
            self.touched.insert(order_ref.to_owned());
        }
        let entry = self.entry(order_ref);
        let was_placed = entry.ledger.placed_at.is_some();
        let was_paid = !entry.ledger.payments.is_empty();
        entry.ledger.apply(fact);
        if placed && !was_placed {
            self.claim_payment(order_ref, changes);
        }
        if let Some(amount) = payment
            && !was_paid
        {
            self.place_payment(order_ref, amount, changes);
        }
    }

    /// Learns a past fact of an order that left the board, to follow it again: its ledger
    /// only, without judging it and without offering it to payments that name no order (its
    /// window for that has passed).
    pub fn recall(&mut self, order_ref: &str, fact: Fact) {
        if !self.touched.contains(order_ref) {
            self.touched.insert(order_ref.to_owned());
        }
        self.entry(order_ref).ledger.apply(fact);
    }

    /// Tells the board that a finding of `order_ref` is already raised (its exception is open,
    /// acknowledged or ignored in the store), so that it is not raised again and is cleared
    /// when its cause goes.
    pub fn know_raised(&mut self, order_ref: &str, pattern: Pattern, subject: &str) {
        if let Some(e) = self.orders.get_mut(order_ref)
            && !e.raised.iter().any(|(p, s)| *p == pattern && s == subject)
        {
            e.raised.push((pattern, subject.to_owned()));
        }
    }

    /// Evaluates each order that learned a fact since it was last judged, once, as of `now`;
    /// wakes the orders whose deadline passed; settled orders whose time has come leave.
    pub fn judge(&mut self, now: Timestamp, changes: &mut Vec<Change>) {
        self.judge_touched(now, changes);
        self.advance(now, changes);
        while let Some(entry) = self.leaving.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (at, refs) = entry.remove_entry();
            for order_ref in refs {
                if self.orders.get(&order_ref).is_some_and(|e| e.leave_at == Some(at)) {
                    self.leave(&order_ref);
                }
            }
        }
        // A catch-up or a burst may have grown the map far beyond what is followed now.
        if self.orders.capacity() > 4 * self.orders.len() + 1024 {
            self.orders.shrink_to(2 * self.orders.len());
        }
    }

    fn judge_touched(&mut self, now: Timestamp, changes: &mut Vec<Change>) {
        // Taken, not drained: a catch-up's million touched orders must not keep their capacity.
        let mut touched: Vec<String> = std::mem::take(&mut self.touched).into_iter().collect();
        touched.sort_unstable();
        for order_ref in touched {
            self.evaluate(&order_ref, now, changes);
        }
    }

    fn entry(&mut self, order_ref: &str) -> &mut Entry {
        // Most facts are about an order already followed: look up before allocating a key.
        if !self.orders.contains_key(order_ref) {
            self.orders.insert(order_ref.to_owned(), Box::new(Entry::new(order_ref)));
        }
        self.orders.get_mut(order_ref).expect("inserted above")
    }

    /// An order leaves the board, and the payment indexes with it.
    fn leave(&mut self, order_ref: &str) {
        let Some(e) = self.orders.remove(order_ref) else { return };
        if let Some(total) = e.ledger.total {
            self.remove_index(Index::Orders, total, order_ref);
        }
        if let Some(p) = e.ledger.payments.first() {
            self.remove_index(Index::Payments, p.amount, order_ref);
        }
    }

    /// Re-evaluates every order whose next deadline has passed by `now`.
    pub fn advance(&mut self, now: Timestamp, changes: &mut Vec<Change>) {
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (at, refs) = entry.remove_entry();
            for order_ref in refs {
                if self.orders.get(&order_ref).is_some_and(|e| e.next_check == Some(at)) {
                    self.evaluate(&order_ref, now, changes);
                }
            }
        }
    }

    /// When the earliest order is due to be evaluated again.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.keys().next().copied()
    }

    /// Forgets that a finding was raised, so that it is raised again if its cause persists at
    /// the next evaluation (a person resolved it; the rules check their word).
    pub fn recheck(
        &mut self,
        order_ref: &str,
        pattern: Pattern,
        subject: &str,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        if let Some(e) = self.orders.get_mut(order_ref) {
            e.raised.retain(|(p, s)| !(*p == pattern && s == subject));
            self.evaluate(order_ref, now, changes);
        }
    }

    fn evaluate(&mut self, order_ref: &str, now: Timestamp, changes: &mut Vec<Change>) {
        let Some(e) = self.orders.get_mut(order_ref) else { return };
        let verdict = evaluate(&e.ledger, &self.deadlines, now);
        e.raised.retain(|(pattern, subject)| {
            let holds = verdict.findings.iter().any(|f| f.pattern == *pattern && f.subject == *subject);
            if !holds {
                let (pattern, subject) = (*pattern, subject.clone());
                changes.push(Change::Cleared { order_ref: order_ref.to_owned(), pattern, subject });
            }
            holds
        });
        for finding in verdict.findings {
            if !e.raised.iter().any(|(p, s)| *p == finding.pattern && *s == finding.subject) {
                e.raised.push((finding.pattern, finding.subject.clone()));
                changes.push(Change::Raised { order_ref: order_ref.to_owned(), finding });
            }
        }
        if e.next_check != verdict.next_check {
            if let Some(old) = e.next_check {
                unslot(&mut self.timers, old, order_ref);
            }
            e.next_check = verdict.next_check;
            if let Some(at) = verdict.next_check {
                self.timers.entry(at).or_default().push(order_ref.to_owned());
            }
        }
        // Settled: leaves once a payment naming no order can no longer claim it.
        let leave_at = (e.raised.is_empty() && e.next_check.is_none() && e.absorbed.is_empty()).then(|| {
            let unpaid = e.ledger.payments.is_empty();
            match e.ledger.placed_at {
                Some(placed) if unpaid && self.claims => now.max(placed + self.deadlines.payment),
                _ => now,
            }
        });
        if e.leave_at != leave_at {
            if let Some(old) = e.leave_at {
                unslot(&mut self.leaving, old, order_ref);
            }
            e.leave_at = leave_at;
            if let Some(at) = leave_at {
                self.leaving.entry(at).or_default().push(order_ref.to_owned());
            }
        }
    }

    /// A newly placed order claims a payment that named no order, by amount, email and time.
    fn claim_payment(&mut self, order_ref: &str, changes: &mut Vec<Change>) {
        let order = &self.orders[order_ref].ledger;
        let Some(total) = order.total else { return };
        if !order.payments.is_empty() {
            return;
        }
        let keys = order_keys(order, total);
        let best = self.best_match(self.unclaimed_payments.get(&total), |l| {
            fuzzy::payment(keys, payment_keys(l.payments.first()?))
        });
        match best {
            Some((orphan, score)) => {
                self.remove_index(Index::Payments, total, &orphan);
                self.move_payments(&orphan, order_ref, score, changes);
            }
            None => {
                self.unpaid_orders.entry(total).or_default().insert(order_ref.to_owned());
            }
        }
    }

    /// A payment that lands on an order never placed looks for an unpaid order it belongs to;
    /// a payment for a placed order takes it off the unpaid index.
    fn place_payment(&mut self, order_ref: &str, amount: Money, changes: &mut Vec<Change>) {
        let ledger = &self.orders[order_ref].ledger;
        if let Some(total) = ledger.total {
            self.remove_index(Index::Orders, total, order_ref);
            return;
        }
        let payment = payment_keys(ledger.payments.first().expect("just paid"));
        let best =
            self.best_match(self.unpaid_orders.get(&amount), |l| fuzzy::payment(order_keys(l, l.total?), payment));
        match best {
            Some((owner, score)) => {
                self.remove_index(Index::Orders, amount, &owner);
                self.move_payments(order_ref, &owner, score, changes);
                self.touched.insert(owner);
            }
            None => {
                self.unclaimed_payments.entry(amount).or_default().insert(order_ref.to_owned());
            }
        }
    }

    /// The candidate order the fuzzy score likes best.
    fn best_match(
        &self,
        candidates: Option<&BTreeSet<String>>,
        score: impl Fn(&Ledger) -> Option<f32>,
    ) -> Option<(String, f32)> {
        candidates?
            .iter()
            .filter_map(|r| Some((r.clone(), score(&self.orders.get(r)?.ledger)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Moves the payments of a ledger that holds nothing else onto the order they were matched
    /// to, at the match's confidence; the emptied ledger clears what it raised and goes.
    fn move_payments(&mut self, from: &str, to: &str, score: f32, changes: &mut Vec<Change>) {
        let emptied = self.orders.remove(from).expect("indexed");
        self.touched.remove(from);
        for (pattern, subject) in emptied.raised {
            changes.push(Change::Cleared { order_ref: from.to_owned(), pattern, subject });
        }
        let mut payments = emptied.ledger.payments;
        for p in &mut payments {
            p.confidence = score;
        }
        let owner = self.orders.get_mut(to).expect("matched");
        owner.ledger.payments.extend(payments);
        owner.absorbed.push(from.to_owned());
        owner.absorbed.extend(emptied.absorbed);
    }

    fn remove_index(&mut self, index: Index, amount: Money, order_ref: &str) {
        let map = match index {
            Index::Payments => &mut self.unclaimed_payments,
            Index::Orders => &mut self.unpaid_orders,
        };
        if let Some(refs) = map.get_mut(&amount) {
            refs.remove(order_ref);
            if refs.is_empty() {
                map.remove(&amount);
            }
        }
    }
}

enum Index {
    Payments,
    Orders,
}

/// Takes `order_ref` out of its slot at `at` (a timer or a leaving time it moved from), so the
/// maps hold only what is still due: an order's history of moves never piles up in memory.
fn unslot(map: &mut BTreeMap<Timestamp, Vec<String>>, at: Timestamp, order_ref: &str) {
    if let Some(refs) = map.get_mut(&at) {
        if let Some(i) = refs.iter().position(|r| r == order_ref) {
            refs.swap_remove(i);
        }
        if refs.is_empty() {
            map.remove(&at);
        }
    }
}

fn order_keys(l: &Ledger, total: Money) -> fuzzy::Keys<'_> {
    fuzzy::Keys { amount: total, email: l.email.as_deref(), at: l.placed_at.unwrap_or_default(), lines: l.lines }
}

fn payment_keys(p: &crate::PaymentFact) -> fuzzy::Keys<'_> {
    fuzzy::Keys { amount: p.amount, email: p.email.as_deref(), at: p.captured_at, lines: None }
}
