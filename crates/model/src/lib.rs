//! The canonical model of Handoff: orders, money, ids, events, commands and exceptions.
//! No I/O lives here; every other crate speaks these types.

pub mod cluster;
pub mod command;
pub mod event;
pub mod exception;
pub mod ids;
pub mod money;
pub mod order;
pub mod personal;

pub use command::{CommandKind, CommandState, RecordAddress, idempotency_key};
pub use event::{EventError, EventKind, InboundEvent};
pub use exception::{ExceptionState, Pattern};
pub use ids::ExternalId;
pub use money::{Currency, Money};
pub use order::{
    Address, CanonicalOrder, Customer, Fulfillment, FulfillmentLine, OrderLine, Payment, PaymentStatus, Refund, Totals,
};
