//! The failure patterns as rules over one order's cross-system ledger.
//!
//! One implementation, two drivers: the live hub feeds a [`Board`] fact by fact and lets it
//! wake orders as their deadlines pass; `handoff reconcile` builds each [`Ledger`] from exports
//! and calls [`evaluate`] once, as of a given time. Nothing here does I/O or reads a clock.

mod board;
mod evaluate;
pub mod fuzzy;
mod ledger;

pub use board::{Board, Change};
pub use evaluate::{Action, Finding, Verdict, evaluate};
pub use ledger::{ErpRecord, ErpState, Fact, Ledger, PaymentFact};

use jiff::SignedDuration;

/// How long each promise may take before its rule fires (the T of the patterns), taken from
/// the contract's flow deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// An order placed in a channel has an ERP order (Missing Order).
    pub erp_order: SignedDuration,
    /// A fulfillment in one system shows in the other (Status Void).
    pub fulfillment: SignedDuration,
    /// A cancellation or refund upstream closes the ERP order (Rollback Gap).
    pub cancellation: SignedDuration,
    /// A captured payment belongs to an ERP order (Orphaned Payment).
    pub payment: SignedDuration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            erp_order: SignedDuration::from_mins(15),
            fulfillment: SignedDuration::from_mins(30),
            cancellation: SignedDuration::from_mins(15),
            payment: SignedDuration::from_mins(15),
        }
    }
}
