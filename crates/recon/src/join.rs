//! Every input's records joined into one compact entry per order reference; then the payments
//! and ERP records that name no known order are matched by fuzzy keys (amount first, through a
//! sorted index, so the pass is not quadratic); then each order becomes a rules [`Ledger`],
//! built from [`Fact`]s exactly as the live hub builds it.

use std::hash::BuildHasher;

use handoff_model::{Currency, Money};
use handoff_rules::fuzzy::{self, Keys};
use handoff_rules::{Fact, Ledger, PaymentFact};
use hashbrown::HashTable;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::arena::{Arena, NO};
use crate::references::References;
use crate::rows::{Batch, NONE, Rec, Ts, ts};

/// What is known of one order reference so far.
#[derive(Clone)]
struct Order {
    placed: Ts,
    updated: Ts,
    fulfilled: Ts,
    closed: Ts,
    refunded_at: Ts,
    /// The order's total, or the sum of its items' amounts until a total is seen.
    amount: Decimal,
    /// Refunded in the channel (an amount; `REFUNDED_IN_FULL` says all of it).
    refunded: Decimal,
    currency: Option<Currency>,
    flags: u8,
    /// 0: no channel has shown the order; else the channel's index + 1.
    channel: u8,
    lines: u32,
    email: u32,
    /// Heads of the order's lists of ERP records and payments.
    erp: u32,
    payments: u32,
}

const HAS_TOTAL: u8 = 1;
const HAS_ITEMS: u8 = 2;
const REFUNDED_IN_FULL: u8 = 4;

impl Default for Order {
    fn default() -> Self {
        Order {
            placed: NONE,
            updated: NONE,
            fulfilled: NONE,
            closed: NONE,
            refunded_at: NONE,
            amount: Decimal::ZERO,
            refunded: Decimal::ZERO,
            currency: None,
            flags: 0,
            channel: 0,
            lines: 0,
            email: NO,
            erp: NO,
            payments: NO,
        }
    }
}

impl Order {
    fn total(&self) -> Option<Money> {
        (self.flags & (HAS_TOTAL | HAS_ITEMS) != 0).then_some(Money::new(self.amount, self.currency?))
    }

    /// What the channel refunded, and when.
    fn refund(&self) -> Option<(Money, Ts)> {
        if self.refunded_at == NONE {
            return None;
        }
        let total = self.total()?;
        let amount = if self.flags & REFUNDED_IN_FULL != 0 { total.amount } else { self.refunded };
        Some((Money::new(amount, total.currency), self.refunded_at))
    }
}

struct ErpRow {
    id: u32,
    at: Ts,
    fulfilled: Ts,
    cancelled: Ts,
    total: Option<Decimal>,
    currency: Option<Currency>,
    lines: u32,
    email: u32,
    confidence: f32,
    next: u32,
}

struct PayRow {
    id: u32,
    at: Ts,
    amount: Decimal,
    currency: Currency,
    email: u32,
    refunded: bool,
    confidence: f32,
    next: u32,
}

/// A payment or an ERP record tied to an order by fuzzy keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FuzzyLink {
    /// `payment` or `erp`.
    pub kind: &'static str,
    pub id: String,
    pub order_ref: String,
    pub confidence: f32,
}

/// Counts of what was read and matched.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JoinStats {
    /// Orders shown by a channel.
    pub orders: u64,
    pub orders_by_channel: Vec<(String, u64)>,
    pub payments: u64,
    pub erp_records: u64,
    pub erp_fulfillments: u64,
    pub payments_by_reference: u64,
    pub payments_by_fuzzy: u64,
    /// Payments tied to no order: each its own ledger.
    pub payments_unmatched: u64,
    pub erp_by_reference: u64,
    pub erp_by_fuzzy: u64,
    /// ERP records that name no order and match none.
    pub erp_unmatched: u64,
    /// Fulfillments naming an ERP record not in the ERP export.
    pub fulfillments_unmatched: u64,
}

#[derive(Default)]
pub struct Join {
    channels: Vec<String>,
    /// Order references: the index of each is its order's in `orders`.
    refs: References,
    orders: Vec<Order>,
    strings: Arena,
    erp: Vec<ErpRow>,
    payments: Vec<PayRow>,
    /// ERP records and payments naming no order, waiting for the fuzzy pass.
    loose_erp: Vec<u32>,
    loose_payments: Vec<u32>,
    /// ERP fulfillments, by the id (in `shipment_ids`) of the record they fulfil: both let go
    /// once applied.
    shipments: Vec<(u32, Ts)>,
    shipment_ids: Arena,
    pub links: Vec<FuzzyLink>,
    pub stats: JoinStats,
}

impl Join {
    pub fn new(channels: Vec<String>) -> Join {
        Join { channels, ..Join::default() }
    }

    pub fn apply(&mut self, batch: &Batch) {
        let references: Vec<&str> = batch
            .recs
            .iter()
            .map(|rec| match *rec {
                Rec::Channel { reference, .. } | Rec::Payment { reference, .. } | Rec::Erp { reference, .. } => {
                    batch.text(reference)
                }
                Rec::Shipment { .. } => "",
            })
            .collect();
        let mut found = Vec::with_capacity(references.len());
        self.refs.intern_all(&references, &mut found);
        self.orders.resize(self.refs.len(), Order::default());
        for (rec, &o) in batch.recs.iter().zip(&found) {
            match *rec {
                Rec::Channel {
                    system,
                    reference: _,
                    placed,
                    updated,
                    email,
                    currency,
                    total,
                    items,
                    lines,
                    fulfilled,
                    closed,
                    refunded,
                    refunded_in_full,
                    refunded_at,
                } => {
                    let i = o as usize;
                    let email = match self.orders[i].email {
                        NO => self.strings.push(batch.text(email)),
                        e => e,
                    };
                    let o = &mut self.orders[i];
                    if o.channel == 0 {
                        o.channel = system + 1;
                    }
                    o.email = email;
                    o.placed = min(o.placed, placed);
                    o.updated = o.updated.max(updated);
                    o.fulfilled = min(o.fulfilled, fulfilled);
                    o.closed = min(o.closed, closed);
                    o.currency = currency.or(o.currency);
                    if let Some(t) = total {
                        o.amount = t;
                        o.flags |= HAS_TOTAL;
                    }
                    if let Some(a) = items
                        && o.flags & HAS_TOTAL == 0
                    {
                        o.amount += a;
                        o.flags |= HAS_ITEMS;
                    }
                    o.lines += lines;
                    if refunded_at != NONE {
                        o.refunded_at = o.refunded_at.max(refunded_at);
                        o.refunded += refunded.unwrap_or_default();
                        if refunded_in_full {
                            o.flags |= REFUNDED_IN_FULL;
                        }
                    }
                }
                Rec::Payment { id, reference, at, amount, currency, email, refunded } => {
                    // An email only serves the fuzzy pass: kept for payments naming no order.
                    let email = if reference.is_empty() { batch.text(email) } else { "" };
                    let row = PayRow {
                        id: self.strings.push(batch.text(id)),
                        at,
                        amount,
                        currency,
                        email: self.strings.push(email),
                        refunded,
                        confidence: 1.0,
                        next: NO,
                    };
                    let p = self.payments.len() as u32;
                    self.payments.push(row);
                    match o {
                        NO => self.loose_payments.push(p),
                        o => {
                            self.link_payment(p, o);
                            self.stats.payments_by_reference += 1;
                        }
                    }
                }
                Rec::Erp { id, reference, at, total, currency, lines, email, fulfilled, cancelled } => {
                    let email = if reference.is_empty() { batch.text(email) } else { "" };
                    let row = ErpRow {
                        id: self.strings.push(batch.text(id)),
                        at,
                        fulfilled,
                        cancelled,
                        total,
                        currency,
                        lines: lines.unwrap_or(NO),
                        email: self.strings.push(email),
                        confidence: 1.0,
                        next: NO,
                    };
                    let r = self.erp.len() as u32;
                    self.erp.push(row);
                    match o {
                        NO => self.loose_erp.push(r),
                        o => {
                            self.link_erp(r, o);
                            self.stats.erp_by_reference += 1;
                        }
                    }
                }
                Rec::Shipment { erp_id, at } => {
                    let id = self.shipment_ids.push(batch.text(erp_id));
                    self.shipments.push((id, at));
                }
            }
        }
    }

    fn link_payment(&mut self, p: u32, o: u32) {
        self.payments[p as usize].next = self.orders[o as usize].payments;
        self.orders[o as usize].payments = p;
    }

    fn link_erp(&mut self, r: u32, o: u32) {
        self.erp[r as usize].next = self.orders[o as usize].erp;
        self.orders[o as usize].erp = r;
    }

    /// After every input is read: fulfillments onto their ERP records, then the fuzzy pass.
    pub fn finish(&mut self) {
        self.apply_shipments();
        self.match_loose();
        self.stats.payments = self.payments.len() as u64;
        self.stats.erp_records = self.erp.len() as u64;
        let mut by_channel = vec![0u64; self.channels.len()];
        for o in self.orders.iter().filter(|o| o.placed != NONE && o.channel > 0) {
            by_channel[o.channel as usize - 1] += 1;
        }
        self.stats.orders = by_channel.iter().sum();
        self.stats.orders_by_channel = self.channels.iter().cloned().zip(by_channel).collect();
    }

    fn apply_shipments(&mut self) {
        if self.shipments.is_empty() {
            return;
        }
        self.stats.erp_fulfillments = self.shipments.len() as u64;
        // ERP records by id: a table of their indexes only (a map of ids would cost several
        // times the records' own memory at ten million).
        let hasher = foldhash::fast::FixedState::default();
        let (erp, strings) = (&self.erp, &self.strings);
        let id_of = |r: u32| strings.get(erp[r as usize].id);
        let mut by_id: HashTable<u32> = HashTable::with_capacity(erp.len());
        for r in 0..erp.len() as u32 {
            by_id.insert_unique(hasher.hash_one(id_of(r)), r, |&r| hasher.hash_one(id_of(r)));
        }
        let mut found = Vec::with_capacity(self.shipments.len());
        for &(id, at) in &self.shipments {
            let id = self.shipment_ids.get(id);
            match by_id.find(hasher.hash_one(id), |&r| id_of(r) == id) {
                Some(&r) => found.push((r, at)),
                None => self.stats.fulfillments_unmatched += 1,
            }
        }
        drop(by_id);
        self.shipments = Vec::new();
        self.shipment_ids = Arena::default();
        for (r, at) in found {
            let row = &mut self.erp[r as usize];
            row.fulfilled = min(row.fulfilled, at);
        }
    }

    fn keys(&self, o: &Order) -> Option<Keys<'_>> {
        Some(Keys {
            amount: o.total()?,
            email: self.strings.opt(o.email),
            at: ts(o.placed)?,
            lines: (o.lines > 0).then_some(o.lines),
        })
    }

    fn match_loose(&mut self) {
        if self.loose_payments.is_empty() && self.loose_erp.is_empty() {
            return;
        }
        // The amounts something loose was paid or recorded for: only orders of those amounts
        // can be candidates, which keeps the index a fraction of the orders.
        let mut amounts: hashbrown::HashSet<(Currency, Decimal), foldhash::fast::FixedState> = Default::default();
        amounts.extend(self.loose_payments.iter().map(|&p| &self.payments[p as usize]).map(|r| (r.currency, r.amount)));
        amounts.extend(self.loose_erp.iter().filter_map(|&r| {
            let row = &self.erp[r as usize];
            row.currency.zip(row.total)
        }));
        // Orders shown by a channel, sorted by (currency, total, placed): a payment's or a
        // record's candidates are one contiguous range.
        let mut index: Vec<(Currency, Decimal, Ts, u32)> = self
            .orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.placed != NONE)
            .filter_map(|(i, o)| o.total().map(|m| (m.currency, m.amount, o.placed, i as u32)))
            .filter(|&(c, a, _, _)| amounts.contains(&(c, a)))
            .collect();
        drop(amounts);
        index.sort_unstable();
        let window = |cur: Currency, amount: Decimal, from: Ts, to: Ts| {
            let lo = index.partition_point(|&(c, a, t, _)| (c, a, t) < (cur, amount, from));
            let hi = index.partition_point(|&(c, a, t, _)| (c, a, t) <= (cur, amount, to));
            &index[lo..hi.max(lo)]
        };
        let payment_window = fuzzy::PAYMENT_WINDOW.as_secs();
        let erp_window = fuzzy::ERP_WINDOW.as_secs();

        let mut payment_links = Vec::new();
        for &p in &self.loose_payments {
            let row = &self.payments[p as usize];
            let keys = Keys {
                amount: Money::new(row.amount, row.currency),
                email: self.strings.opt(row.email),
                at: ts(row.at).expect("a payment has a capture time"),
                lines: None,
            };
            let best = window(row.currency, row.amount, row.at - payment_window, row.at + payment_window)
                .iter()
                .filter_map(|&(_, _, placed, o)| {
                    let order = &self.orders[o as usize];
                    let score = fuzzy::payment(self.keys(order)?, keys)?;
                    // An order not yet paid, then the surer match, then the nearer in time.
                    Some(((order.payments == NO), score, -(placed - row.at).abs(), o))
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
            if let Some((_, score, _, o)) = best {
                payment_links.push((p, o, score));
            }
        }
        let mut erp_links = Vec::new();
        for &r in &self.loose_erp {
            let row = &self.erp[r as usize];
            let (Some(total), Some(currency)) = (row.total, row.currency) else { continue };
            let keys = Keys {
                amount: Money::new(total, currency),
                email: self.strings.opt(row.email),
                at: ts(row.at).expect("an ERP record has a creation time"),
                lines: (row.lines != NO).then_some(row.lines),
            };
            let best = window(currency, total, row.at - erp_window, row.at + payment_window)
                .iter()
                .filter_map(|&(_, _, placed, o)| {
                    let order = &self.orders[o as usize];
                    let score = fuzzy::erp_record(self.keys(order)?, keys)?;
                    // The surer match, then an order the ERP has no record of, then the nearer.
                    Some((score, order.erp == NO, -(row.at - placed).abs(), o))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            if let Some((score, _, _, o)) = best {
                erp_links.push((r, o, score));
            }
        }
        drop(index);
        for (p, o, score) in payment_links {
            self.payments[p as usize].confidence = score;
            self.link_payment(p, o);
            self.links.push(FuzzyLink {
                kind: "payment",
                id: self.strings.get(self.payments[p as usize].id).to_owned(),
                order_ref: self.refs.get(o).to_owned(),
                confidence: score,
            });
            self.stats.payments_by_fuzzy += 1;
        }
        for (r, o, score) in erp_links {
            self.erp[r as usize].confidence = score;
            self.link_erp(r, o);
            self.links.push(FuzzyLink {
                kind: "erp",
                id: self.strings.get(self.erp[r as usize].id).to_owned(),
                order_ref: self.refs.get(o).to_owned(),
                confidence: score,
            });
            self.stats.erp_by_fuzzy += 1;
        }
        // A payment or record the fuzzy pass tied to an order has a confidence below 1.
        let payments = &self.payments;
        self.loose_payments.retain(|&p| payments[p as usize].confidence == 1.0);
        self.stats.payments_unmatched = self.loose_payments.len() as u64;
        let erp = &self.erp;
        self.stats.erp_unmatched = self.loose_erp.iter().filter(|&&r| erp[r as usize].confidence == 1.0).count() as u64;
    }

    /// How many ledgers [`Join::ledger`] serves: one per order reference, then one per
    /// payment tied to no order.
    pub fn len(&self) -> usize {
        self.orders.len() + self.loose_payments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th ledger, built from facts as the live hub would build it.
    pub fn ledger(&self, i: usize) -> Ledger {
        if i >= self.orders.len() {
            let p = self.loose_payments[i - self.orders.len()];
            let row = &self.payments[p as usize];
            let mut l = Ledger::new(self.strings.get(row.id));
            self.apply_payment(&mut l, row);
            return l;
        }
        let o = &self.orders[i];
        let mut l = Ledger::new(self.refs.get(i as u32));
        if let (Some(at), Some(total)) = (ts(o.placed), o.total()) {
            let channel = self.channels[o.channel as usize - 1].clone();
            let email = self.strings.opt(o.email).map(str::to_owned);
            l.apply(Fact::Placed { channel: channel.clone(), at, total, lines: o.lines, email: email.clone() });
            if let Some(updated) = ts(o.updated).filter(|u| *u > at) {
                l.apply(Fact::Placed { channel, at: updated, total, lines: o.lines, email });
            }
            if let Some(at) = ts(o.fulfilled) {
                l.apply(Fact::ChannelFulfilled { at });
            }
            if let Some(at) = ts(o.closed) {
                l.apply(Fact::Closed { at });
            }
            if let Some((amount, at)) = o.refund() {
                l.apply(Fact::Refunded { amount, at: ts(at).expect("a refund has a time") });
            }
        }
        // The lists are newest first; facts go in in the order they were read.
        let mut records = Vec::new();
        let mut r = o.erp;
        while r != NO {
            records.push(&self.erp[r as usize]);
            r = self.erp[r as usize].next;
        }
        for row in records.into_iter().rev() {
            let id = self.strings.get(row.id).to_owned();
            let at = ts(row.at).expect("an ERP record has a creation time");
            let total = row.total.zip(row.currency).map(|(a, c)| Money::new(a, c));
            let lines = (row.lines != NO).then_some(row.lines);
            l.apply(Fact::ErpRecord {
                system: "erp".into(),
                id: id.clone(),
                at,
                total,
                lines,
                confidence: row.confidence,
            });
            if let Some(at) = ts(row.fulfilled) {
                l.apply(Fact::ErpFulfilled { id: Some(id.clone()), at });
            }
            if let Some(at) = ts(row.cancelled) {
                l.apply(Fact::ErpCancelled { id: Some(id), at });
            }
        }
        let mut payments = Vec::new();
        let mut p = o.payments;
        while p != NO {
            payments.push(&self.payments[p as usize]);
            p = self.payments[p as usize].next;
        }
        for row in payments.into_iter().rev() {
            self.apply_payment(&mut l, row);
        }
        l
    }

    fn apply_payment(&self, l: &mut Ledger, row: &PayRow) {
        let payment_id = self.strings.get(row.id).to_owned();
        l.apply(Fact::Payment(PaymentFact {
            payment_id: payment_id.clone(),
            amount: Money::new(row.amount, row.currency),
            captured_at: ts(row.at).expect("a payment has a capture time"),
            email: self.strings.opt(row.email).map(str::to_owned),
            refunded: false,
            confidence: row.confidence,
        }));
        if row.refunded {
            l.apply(Fact::PaymentRefunded { payment_id });
        }
    }

    /// When the order behind ledger `i` was placed (or its payment captured).
    pub fn occurred_at(&self, i: usize) -> Option<Timestamp> {
        match self.orders.get(i) {
            Some(o) => ts(o.placed),
            None => ts(self.payments[self.loose_payments[i - self.orders.len()] as usize].at),
        }
    }
}

fn min(a: Ts, b: Ts) -> Ts {
    match (a, b) {
        (NONE, b) => b,
        (a, NONE) => a,
        (a, b) => a.min(b),
    }
}
