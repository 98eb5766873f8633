//! The seam between the engine and a system that receives commands.

use std::future::Future;
use std::pin::Pin;

use handoff_store::Command;
use jiff::SignedDuration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The target's proof that it applied a command: its record id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub record_id: String,
}

/// How a delivery failed, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: timeout, reset, 5xx, outage. `ambiguous` when the target may have
    /// applied the command (so it must be read back before any resend).
    #[error("{reason}")]
    Transient { reason: String, ambiguous: bool, retry_after: Option<SignedDuration> },
    /// The target refused for its own load and applied nothing (a 429, a rate or concurrency
    /// limit), saying when to come back or not: retried without spending an attempt of the
    /// budget, only the flow's deadline.
    #[error("{reason}")]
    Throttled { reason: String, retry_after: Option<SignedDuration> },
    /// The target refused the data (a 4xx); sending it again unchanged cannot succeed.
    #[error("{reason}")]
    Permanent { reason: String, field: Option<String> },
    /// Held at the transform layer, NOT sent: the mapped payload would be refused by the
    /// target's schema (a required field missing, a wrong type). `mapping` names the version.
    #[error("held at the transform layer, not sent ({mapping}): {reason}")]
    Held { reason: String, field: String, mapping: String },
}

pub trait Target: Send + Sync {
    /// Sends the command with its idempotency key.
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>>;

    /// Looks the command's effect up by external reference (by record id for a command
    /// addressed to one record): `Some` when the target already shows it applied (the record
    /// exists; for a cancel, the record is cancelled).
    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>>;

    /// The mapping version this target makes the command's payload with, if it maps (recorded
    /// with the attempt, so a replay knows what ran).
    fn mapping(&self, _command: &Command) -> Option<String> {
        None
    }

    /// Whether the target can act on one record by its own id (NetSuite's internal id, Odoo's
    /// record id): a command whose payload names a record ([`handoff_model::RecordAddress`]) is
    /// applied to exactly that record, and read back by that id. Without it, a cancel of a
    /// duplicate could close whichever record holds the external reference, the one kept
    /// included, so `cancel-duplicates` is refused for the target.
    fn addresses_records(&self) -> bool {
        false
    }

    /// Whether the target deduplicates on `Idempotency-Key`. When it does not, every send is
    /// preceded by a read-back, which is safe because commands of one order are serialised.
    fn honours_idempotency_keys(&self) -> bool;
}
