//! One order's cross-system ledger: what each system is known to hold, and since when.

use handoff_model::Money;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The state of an ERP record as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErpState {
    /// Open, released or allocated: it will ship unless someone stops it.
    Open,
    Fulfilled,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpRecord {
    /// The ERP holding it (a stack may run more than one).
    pub system: String,
    /// The ERP's own id for the record.
    pub id: String,
    pub seen_at: Timestamp,
    pub state: ErpState,
    /// When the ERP fulfilled it, where it did.
    #[serde(default)]
    pub fulfilled_at: Option<Timestamp>,
    #[serde(default)]
    pub total: Option<Money>,
    #[serde(default)]
    pub lines: Option<u32>,
    /// 1.0 when the record names the order's reference; lower when matched by fuzzy keys.
    pub confidence: f32,
}

/// A captured payment attributed to this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFact {
    pub payment_id: String,
    pub amount: Money,
    pub captured_at: Timestamp,
    #[serde(default)]
    pub email: Option<String>,
    /// Refunded or voided: no longer money the merchant holds.
    #[serde(default)]
    pub refunded: bool,
    /// 1.0 when the payment names the order's reference; lower when matched by fuzzy keys.
    pub confidence: f32,
}

/// What the rules know of one order across systems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub order_ref: String,
    /// The storefront or marketplace the order was placed in.
    #[serde(default)]
    pub channel: Option<String>,
    /// When the channel created or confirmed the order; `None` when no channel has shown it.
    #[serde(default)]
    pub placed_at: Option<Timestamp>,
    /// When the channel last changed the order.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub total: Option<Money>,
    #[serde(default)]
    pub lines: Option<u32>,
    #[serde(default)]
    pub email: Option<String>,
    /// When the channel shows the order fulfilled.
    #[serde(default)]
    pub channel_fulfilled_at: Option<Timestamp>,
    /// When the channel cancelled or fully refunded the order.
    #[serde(default)]
    pub closed_at: Option<Timestamp>,
    #[serde(default)]
    pub erp: Vec<ErpRecord>,
    #[serde(default)]
    pub payments: Vec<PaymentFact>,
    /// Refunded in the channel so far; the order is closed once it covers the total.
    #[serde(default)]
    pub refunded: Option<Money>,
    /// Commands of the hub for this order that are dead-lettered: while one is, the dead letter
    /// is the exception to work, and the rules whose remedy it is stay quiet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<String>,
}

/// One thing learned about an order; the live driver turns events and acknowledgments into
/// these, reconcile turns export rows into them.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// The channel created, confirmed or changed the order.
    Placed {
        channel: String,
        at: Timestamp,
        total: Money,
        lines: u32,
        email: Option<String>,
    },
    ChannelFulfilled {
        at: Timestamp,
    },
    /// Cancelled in the channel.
    Closed {
        at: Timestamp,
    },
    /// A refund in the channel; it closes the order once refunds cover the total.
    Refunded {
        amount: Money,
        at: Timestamp,
    },
    /// The ERP holds (or changed) a record of the order.
    ErpRecord {
        system: String,
        id: String,
        at: Timestamp,
        total: Option<Money>,
        lines: Option<u32>,
        confidence: f32,
    },
    /// The ERP fulfilled a record; `None` means the order's only or first record.
    ErpFulfilled {
        id: Option<String>,
        at: Timestamp,
    },
    /// The ERP cancelled or closed a record; `None` means every record of the order.
    ErpCancelled {
        id: Option<String>,
        at: Timestamp,
    },
    Payment(PaymentFact),
    PaymentRefunded {
        payment_id: String,
    },
    /// A command of the hub for this order was dead-lettered, or delivered after all.
    DeadLettered {
        command: String,
    },
    Delivered {
        command: String,
    },
    /// A person abandoned a dead-lettered command: it is no longer the exception to work.
    Abandoned {
        command: String,
    },
}

impl Ledger {
    pub fn new(order_ref: impl Into<String>) -> Self {
        Ledger { order_ref: order_ref.into(), ..Ledger::default() }
    }

    pub fn apply(&mut self, fact: Fact) {
        match fact {
            Fact::Placed { channel, at, total, lines, email } => {
                self.channel.get_or_insert(channel);
                self.placed_at = Some(self.placed_at.map_or(at, |p| p.min(at)));
                self.updated_at = Some(self.updated_at.map_or(at, |u| u.max(at)));
                self.total = Some(total);
                self.lines = Some(lines);
                if email.is_some() {
                    self.email = email;
                }
            }
            Fact::ChannelFulfilled { at } => {
                self.channel_fulfilled_at.get_or_insert(at);
            }
            Fact::Closed { at } => {
                self.closed_at.get_or_insert(at);
            }
            Fact::Refunded { amount, at } => {
                let sum = match self.refunded {
                    Some(r) if r.currency == amount.currency => Money::new(r.amount + amount.amount, r.currency),
                    _ => amount,
                };
                self.refunded = Some(sum);
                if self.total.is_some_and(|t| t.currency == sum.currency && sum.amount >= t.amount) {
                    self.closed_at.get_or_insert(at);
                }
            }
            Fact::ErpRecord { system, id, at, total, lines, confidence } => {
                match self.erp.iter_mut().find(|r| r.id == id && r.system == system) {
                    Some(r) => {
                        r.total = total.or(r.total);
                        r.lines = lines.or(r.lines);
                        r.seen_at = r.seen_at.max(at);
                    }
                    None => self.erp.push(ErpRecord {
                        system,
                        id,
                        seen_at: at,
                        state: ErpState::Open,
                        fulfilled_at: None,
                        total,
                        lines,
                        confidence,
                    }),
                }
            }
            Fact::ErpFulfilled { id, at } => {
                if let Some(r) = self.record_mut(id.as_deref()) {
                    if r.state == ErpState::Open {
                        r.state = ErpState::Fulfilled;
                    }
                    r.fulfilled_at.get_or_insert(at);
                }
            }
            Fact::ErpCancelled { id: Some(id), .. } => {
                if let Some(r) = self.erp.iter_mut().find(|r| r.id == id) {
                    r.state = ErpState::Cancelled;
                }
            }
            Fact::ErpCancelled { id: None, .. } => self.erp.iter_mut().for_each(|r| r.state = ErpState::Cancelled),
            Fact::Payment(p) => {
                if !self.payments.iter().any(|q| q.payment_id == p.payment_id) {
                    self.payments.push(p);
                }
            }
            Fact::DeadLettered { command } => {
                if !self.dead_letters.contains(&command) {
                    self.dead_letters.push(command);
                }
            }
            Fact::Delivered { command } | Fact::Abandoned { command } => self.dead_letters.retain(|c| *c != command),
            Fact::PaymentRefunded { payment_id } => {
                if let Some(p) = self.payments.iter_mut().find(|p| p.payment_id == payment_id) {
                    p.refunded = true;
                }
            }
        }
    }

    /// The record named, or the first one still open when none is named.
    fn record_mut(&mut self, id: Option<&str>) -> Option<&mut ErpRecord> {
        match id {
            Some(id) => self.erp.iter_mut().find(|r| r.id == id),
            None => {
                let open = self.erp.iter().position(|r| r.state == ErpState::Open);
                self.erp.get_mut(open.unwrap_or(0))
            }
        }
    }

    /// ERP records not cancelled.
    pub fn live_records(&self) -> impl Iterator<Item = &ErpRecord> {
        self.erp.iter().filter(|r| r.state != ErpState::Cancelled)
    }
}
