//! Commands: outbound instructions to a system, and their life.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    CreateOrder,
    UpdateOrder,
    CancelOrder,
    CreateFulfillment,
    CreateRefund,
}

impl CommandKind {
    pub const ALL: [CommandKind; 5] = [
        CommandKind::CreateOrder,
        CommandKind::UpdateOrder,
        CommandKind::CancelOrder,
        CommandKind::CreateFulfillment,
        CommandKind::CreateRefund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::CreateOrder => "create_order",
            CommandKind::UpdateOrder => "update_order",
            CommandKind::CancelOrder => "cancel_order",
            CommandKind::CreateFulfillment => "create_fulfillment",
            CommandKind::CreateRefund => "create_refund",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CommandKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown command kind {s:?}"))
    }
}

/// pending -> in_flight -> acknowledged; or back to pending with a retry time; or
/// dead_lettered when the budget is spent; or superseded before it was ever sent. A dead
/// letter a person settles is replayed (pending again) or abandoned: never sent again, and no
/// longer holding its order's later commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    Pending,
    InFlight,
    Acknowledged,
    DeadLettered,
    Superseded,
    Abandoned,
}

impl CommandState {
    pub const ALL: [CommandState; 6] = [
        CommandState::Pending,
        CommandState::InFlight,
        CommandState::Acknowledged,
        CommandState::DeadLettered,
        CommandState::Superseded,
        CommandState::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::InFlight => "in_flight",
            CommandState::Acknowledged => "acknowledged",
            CommandState::DeadLettered => "dead_lettered",
            CommandState::Superseded => "superseded",
            CommandState::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CommandState::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown command state {s:?}"))
    }
}

/// The idempotency key of a command. It depends only on what the command is (target, order,
/// kind and the thing it creates), never on when or how often it is sent, so every retry,
/// every replay and every restart sends the same key.
pub fn idempotency_key(target: &str, order_ref: &str, kind: CommandKind, subject: &str) -> String {
    format!("handoff:{target}:{order_ref}:{kind}:{subject}")
}

/// A command addressed to one record of its target, by the target's own id for it (NetSuite's
/// internal id, Odoo's record id): a duplicate's cancel. The payload carries it beside the
/// order's external reference, so a target that can address records acts on exactly that one,
/// never on whichever record holds the external reference (that may be the record kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAddress {
    /// The order's external reference (what the target's records of it are found by).
    pub external_ref: String,
    /// The one record the command acts on.
    pub record_id: String,
    /// The record of the order that stays, when the command closes a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

impl RecordAddress {
    /// The record a command's payload addresses, if it names one (`record_id`).
    pub fn of(payload: &str) -> Option<RecordAddress> {
        serde_json::from_str::<RecordAddress>(payload).ok().filter(|a| !a.record_id.is_empty())
    }

    /// The payload of a command addressed to this record.
    pub fn payload(&self) -> String {
        serde_json::to_string(self).expect("a record address serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let a = idempotency_key("erp", "#1001", CommandKind::CreateOrder, "#1001");
        assert_eq!(a, idempotency_key("erp", "#1001", CommandKind::CreateOrder, "#1001"));
        assert_ne!(a, idempotency_key("erp", "#1001", CommandKind::CancelOrder, "#1001"));
    }

    #[test]
    fn a_payload_names_its_record_or_none() {
        let address = RecordAddress { external_ref: "#1".into(), record_id: "R2".into(), keep: Some("R1".into()) };
        assert_eq!(RecordAddress::of(&address.payload()), Some(address));
        let order = r##"{"external_ref": "#1", "version": 1, "order": {"order_ref": "#1"}}"##;
        assert_eq!(RecordAddress::of(order), None);
        assert_eq!(RecordAddress::of(r##"{"external_ref": "#1", "record_id": ""}"##), None);
    }

    #[test]
    fn names_round_trip() {
        for k in CommandKind::ALL {
            assert_eq!(k.as_str().parse::<CommandKind>().unwrap(), k);
        }
        for s in CommandState::ALL {
            assert_eq!(s.as_str().parse::<CommandState>().unwrap(), s);
        }
    }
}
