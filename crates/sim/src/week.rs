//! A simulated week of orders and a naive fire-and-forget relay like most stacks have: each
//! order's story (placed, paid, shipped or cancelled) and what the relay makes of it under
//! realistic fault rates. The relay plants every failure pattern at a known rate, so the rules
//! can be judged against the truth: what each system ends up holding is the relay's history,
//! which Handoff observes in shadow mode, and the same stories run through Handoff itself.

use handoff_model::{
    Address, CanonicalOrder, Customer, EventKind, ExternalId, Fulfillment, FulfillmentLine, InboundEvent, OrderLine,
    Pattern, Payment, Totals,
};
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

/// How often the relay loses each kind of handoff (shares of orders, or of cancellations).
#[derive(Debug, Clone, Copy)]
pub struct RelayFaults {
    /// The ERP answered 5xx and the relay never retried.
    pub create_lost: f64,
    /// The ERP timed out after applying; the relay sent again without a key.
    pub create_resent: f64,
    /// The mapping dropped the discount: the ERP holds another total.
    pub field_dropped: f64,
    /// The ERP shipped; the relay never told the channel.
    pub fulfillment_lost: f64,
    /// Of cancellations: the relay never told the ERP.
    pub cancel_lost: f64,
    /// The processor captured a payment, then checkout failed: no order anywhere.
    pub checkout_failed: f64,
}

impl Default for RelayFaults {
    fn default() -> Self {
        RelayFaults {
            create_lost: 0.02,
            create_resent: 0.015,
            field_dropped: 0.01,
            fulfillment_lost: 0.03,
            cancel_lost: 0.3,
            checkout_failed: 0.005,
        }
    }
}

/// What becomes of an order in the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Ship(Timestamp),
    Cancel(Timestamp),
}

#[derive(Debug, Clone)]
pub struct Story {
    pub order_ref: String,
    /// `shop` or `market`.
    pub channel: &'static str,
    pub order: CanonicalOrder,
    pub placed_at: Timestamp,
    /// Shop orders are paid through the processor; marketplace orders settle elsewhere.
    pub payment: Option<Payment>,
    pub fate: Fate,
    /// What the relay gets wrong with this order, if anything.
    pub planted: Option<Pattern>,
}

impl Story {
    /// A failed checkout's ledger key: its cart, which never became an order.
    pub fn cart(&self) -> String {
        format!("cart-{}", self.order_ref.trim_start_matches('#'))
    }

    /// Story `i` being placed, as the channel (showing `order`) and the processor announce it;
    /// a checkout that failed after capture announces only its payment, for its cart.
    pub fn placed(&self, i: usize, order: &CanonicalOrder) -> Vec<Observed> {
        let paid = |order_ref: &str| {
            self.payment.clone().map(|p| {
                let mut o = announce(i, after(self.placed_at, 5), "pay", EventKind::OrderPaid, order_ref);
                o.event.payment = Some(p);
                o
            })
        };
        if self.planted == Some(Pattern::OrphanedPayment) {
            return paid(&self.cart()).into_iter().collect();
        }
        let mut created = announce(i, self.placed_at, self.channel, EventKind::OrderCreated, &self.order_ref);
        created.event.order = Some(order.clone());
        std::iter::once(created).chain(paid(&self.order_ref)).collect()
    }
}

pub const WEEK_START: &str = "2026-11-16T00:00:00Z";
const WEEK_S: i64 = 7 * 24 * 3600;

fn after(t: Timestamp, s: i64) -> Timestamp {
    t + SignedDuration::from_secs(s)
}

/// The week's stories, in the order they are placed.
pub fn stories(seed: u64, orders: usize, faults: &RelayFaults) -> Vec<Story> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: Timestamp = WEEK_START.parse().expect("a valid start");
    let eur = "EUR".parse().expect("a currency");
    let mut stories: Vec<Story> = (0..orders)
        .map(|i| {
            let placed_at = after(start, rng.random_range(0..WEEK_S));
            let channel = if rng.random_bool(0.7) { "shop" } else { "market" };
            let order_ref = match channel {
                "shop" => format!("#{}", 10_001 + i),
                _ => format!("302-{:07}-{:07}", seed % 10_000_000, i),
            };
            let lines: Vec<OrderLine> = (0..rng.random_range(1..4))
                .map(|l| OrderLine {
                    sku: format!("SKU-{}", rng.random_range(1..400) + l * 1000),
                    quantity: rng.random_range(1..4),
                    unit_price: Decimal::new(rng.random_range(500..9000), 2),
                    tax: Decimal::ZERO,
                    discount: Decimal::ZERO,
                })
                .collect();
            let subtotal: Decimal = lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity)).sum();
            let shipping = Decimal::new(490, 2);
            let discount = if rng.random_bool(0.3) { (subtotal / Decimal::TEN).round_dp(2) } else { Decimal::ZERO };
            // Personal data marked "canary", so a test can prove none of it leaks into logs or
            // answers that must not show it.
            let email = format!("customer{i}.canary@example.com");
            let order = CanonicalOrder {
                order_ref: order_ref.clone(),
                name: None,
                channel: Some(if channel == "shop" { "web".into() } else { "amazon".into() }),
                customer: Customer { email: Some(email.clone()), name: Some(format!("Customer {i} Canary")) },
                shipping_address: Some(Address {
                    name: Some(format!("Customer {i} Canary")),
                    line1: format!("{i} Canary Lane"),
                    line2: None,
                    city: "Canaryville".into(),
                    region: None,
                    postal_code: format!("CANARY-{i}"),
                    country: "DE".into(),
                }),
                lines,
                currency: eur,
                totals: Totals {
                    discount,
                    ..Totals::new(subtotal, Decimal::ZERO, shipping, subtotal + shipping - discount)
                },
                placed_at,
                payment_status: None,
                cancelled_at: None,
            };
            let payment = (channel == "shop").then(|| Payment {
                payment_id: ExternalId::new(format!("ch_{seed}_{i}")).expect("an id"),
                amount: order.total(),
                email: Some(email),
            });
            let planted = plant(&mut rng, faults, channel, discount > Decimal::ZERO);
            let cancel = planted == Some(Pattern::RollbackGap)
                || (planted.is_none() && rng.random_bool(0.06 * (1.0 - faults.cancel_lost)));
            let fate = if cancel {
                Fate::Cancel(after(placed_at, rng.random_range(600..6 * 3600)))
            } else {
                Fate::Ship(after(placed_at, rng.random_range(3600..48 * 3600)))
            };
            Story { order_ref, channel, order, placed_at, payment, fate, planted }
        })
        .collect();
    stories.sort_by_key(|s| s.placed_at);
    stories
}

/// At most one fault per order, so each planted divergence has one cause.
fn plant(rng: &mut ChaCha8Rng, f: &RelayFaults, channel: &str, discounted: bool) -> Option<Pattern> {
    let draw: f64 = rng.random();
    let cancels = 0.06 * f.cancel_lost;
    let mut edge = 0.0;
    for (share, pattern) in [
        (f.create_lost, Pattern::MissingOrder),
        (f.create_resent, Pattern::DuplicateDraft),
        (if discounted { f.field_dropped / 0.3 } else { 0.0 }, Pattern::TransformMismatch),
        (f.fulfillment_lost, Pattern::StatusVoid),
        (cancels, Pattern::RollbackGap),
        (if channel == "shop" { f.checkout_failed / 0.7 } else { 0.0 }, Pattern::OrphanedPayment),
    ] {
        edge += share;
        if draw < edge {
            return Some(pattern);
        }
    }
    None
}

/// One thing a system announced, as Handoff would receive it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub at: Timestamp,
    pub system: &'static str,
    pub event: InboundEvent,
}

/// What every system of the stack announces over the week when the relay carries the orders:
/// the channels' orders, cancellations and the fulfillments that reached them, the
/// processor's payments, and the ERP's records, fulfillments and cancellations.
pub fn relay_history(stories: &[Story]) -> Vec<Observed> {
    let mut out = Vec::new();
    for (i, s) in stories.iter().enumerate() {
        out.extend(s.placed(i, &s.order));
        if s.planted == Some(Pattern::OrphanedPayment) {
            continue;
        }
        let mut say =
            |at: Timestamp, system: &'static str, kind: EventKind, order_ref: &str, f: &dyn Fn(&mut InboundEvent)| {
                let mut o = announce(i, at, system, kind, order_ref);
                f(&mut o.event);
                out.push(o);
            };
        let erp = |name: String, total_off: bool| {
            let mut order = s.order.clone();
            order.name = Some(name);
            if total_off {
                order.totals.discount = Decimal::ZERO;
                order.totals.total = order.totals.subtotal + order.totals.shipping;
            }
            order
        };
        if s.planted == Some(Pattern::MissingOrder) {
            continue;
        }
        let record = erp(format!("SO-{i}"), s.planted == Some(Pattern::TransformMismatch));
        say(after(s.placed_at, 30), "erp", EventKind::OrderCreated, &s.order_ref, &|e| e.order = Some(record.clone()));
        if s.planted == Some(Pattern::DuplicateDraft) {
            let twin = erp(format!("SO-{i}-2"), false);
            say(after(s.placed_at, 90), "erp", EventKind::OrderCreated, &s.order_ref, &|e| {
                e.order = Some(twin.clone())
            });
        }
        match s.fate {
            Fate::Ship(at) => {
                let f = fulfillment(s, i);
                say(at, "erp", EventKind::FulfillmentCreated, &s.order_ref, &|e| e.fulfillment = Some(f.clone()));
                if s.planted != Some(Pattern::StatusVoid) {
                    let f = fulfillment(s, i);
                    say(after(at, 120), s.channel, EventKind::FulfillmentCreated, &s.order_ref, &|e| {
                        e.fulfillment = Some(f.clone())
                    });
                }
            }
            Fate::Cancel(at) => {
                say(at, s.channel, EventKind::OrderCancelled, &s.order_ref, &|_| {});
                if s.planted != Some(Pattern::RollbackGap) {
                    say(after(at, 60), "erp", EventKind::OrderCancelled, &s.order_ref, &|_| {});
                }
            }
        }
    }
    out.sort_by_key(|o| o.at);
    out
}

/// The divergences the relay planted, as (ledger key, pattern): the truth the rules are
/// judged against.
pub fn planted(stories: &[Story]) -> Vec<(String, Pattern)> {
    stories
        .iter()
        .filter_map(|s| {
            let pattern = s.planted?;
            let key = match pattern {
                Pattern::OrphanedPayment => s.cart(),
                _ => s.order_ref.clone(),
            };
            Some((key, pattern))
        })
        .collect()
}

pub fn fulfillment(s: &Story, i: usize) -> Fulfillment {
    Fulfillment {
        fulfillment_id: ExternalId::new(format!("F-{i}")).expect("an id"),
        lines: s.order.lines.iter().map(|l| FulfillmentLine { sku: l.sku.clone(), quantity: l.quantity }).collect(),
        carrier: Some("DHL".into()),
        tracking_number: Some(format!("JD{i:012}")),
    }
}

/// One announcement of story `i`, with its envelope only.
pub fn announce(i: usize, at: Timestamp, system: &'static str, kind: EventKind, order_ref: &str) -> Observed {
    let id = ExternalId::new(format!("{system}-{i}-{}-{}", kind.as_str(), at.as_second())).expect("an id");
    Observed { at, system, event: InboundEvent::new(id, kind, order_ref, at) }
}
