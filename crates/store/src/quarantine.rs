//! The quarantine: vendor bodies that arrived authenticated (or were polled) but that no reader
//! could map. Each is kept raw, with the request headers its reader needs, beside a Transform
//! Mismatch exception raised in the same transaction, and is replayed into the inbox once the
//! reader is fixed. Nothing a vendor sends is dropped, and no feed stalls on one record.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use crate::Recorded;

/// How a held body came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineSource {
    /// A webhook whose signature verified.
    Webhook,
    /// One record of a poller's page.
    Poll,
}

impl QuarantineSource {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineSource::Webhook => "webhook",
            QuarantineSource::Poll => "poll",
        }
    }
}

impl FromStr for QuarantineSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "webhook" => Ok(QuarantineSource::Webhook),
            "poll" => Ok(QuarantineSource::Poll),
            other => Err(format!("unknown quarantine source {other:?}")),
        }
    }
}

/// Where a held body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineState {
    /// Waiting for a reader that maps it.
    Held,
    /// Read again and recorded in the inbox (`event_row`).
    Replayed,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Held => "held",
            QuarantineState::Replayed => "replayed",
        }
    }
}

impl fmt::Display for QuarantineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuarantineState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "held" => Ok(QuarantineState::Held),
            "replayed" => Ok(QuarantineState::Replayed),
            other => Err(format!("unknown quarantine state {other:?} (held or replayed)")),
        }
    }
}

/// A body to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantined {
    pub system: String,
    pub source: QuarantineSource,
    /// What makes this body itself: a redelivery of it (or a re-read of the same record) is
    /// held once.
    pub fingerprint: String,
    /// The order it is about, when the body names one a reader could find.
    pub order_ref: Option<String>,
    /// The request headers its reader reads (never a signature), by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// Exactly as received.
    pub body: Vec<u8>,
    /// The field path the reader stopped at (`line_items`, `lineItems.quantity`).
    pub field: String,
    pub reason: String,
    /// The vendor's API version, when the delivery or the poller names it.
    pub source_version: Option<String>,
    /// The inbound flow of the system, named on the exception.
    pub flow: Option<String>,
    pub received_at: Timestamp,
}

impl NewQuarantined {
    /// The exception's detail: what could not be read, in which version, and what to do.
    pub(crate) fn detail(&self, id: i64) -> String {
        let version = self.source_version.as_deref().unwrap_or("unversioned");
        format!(
            "{} {} body cannot be mapped: {}: {} (source version {version}); held as quarantine {id}, \
             replay it with `handoff quarantine replay {id}` once the reader is fixed",
            self.system,
            self.source.as_str(),
            self.field,
            self.reason
        )
    }

    /// The exception's evidence: the held body it names.
    pub(crate) fn evidence(&self, id: i64) -> String {
        serde_json::json!({
            "quarantine": id,
            "system": self.system,
            "source": self.source.as_str(),
            "source_version": self.source_version,
            "field": self.field,
            "reason": self.reason,
        })
        .to_string()
    }
}

/// A held body as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub id: i64,
    pub system: String,
    pub source: QuarantineSource,
    pub order_ref: Option<String>,
    pub headers: BTreeMap<String, String>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub field: String,
    pub reason: String,
    pub source_version: Option<String>,
    pub flow: Option<String>,
    pub received_at: Timestamp,
    pub state: QuarantineState,
    /// The Transform Mismatch raised when it was held.
    pub exception_id: Option<i64>,
    /// The inbox row it became once replayed.
    pub event_row: Option<i64>,
    pub replayed_at: Option<Timestamp>,
}

/// What a replay of a held body did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Recorded in the inbox (or found there already: the same event id), the row marked
    /// replayed and its exception resolved.
    Replayed(Recorded),
    /// Replayed before, as this inbox row: nothing changed.
    AlreadyReplayed {
        event_row: Option<i64>,
    },
    NotFound,
}

/// The exception state a replay leaves behind: open or acknowledged ones resolve; a person's
/// ignore or resolve stands.
pub(crate) fn resolves(state: &str) -> bool {
    matches!(state, "open" | "acknowledged")
}
