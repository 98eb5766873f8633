//! Which system owns the order record at each stage of its life. The owner is the system whose
//! word counts for that stage: its events are the ones that travel, and the others follow it.

use std::collections::BTreeMap;
use std::fmt;

use handoff_model::EventKind;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// A stage of an order's life, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Created,
    Paid,
    Released,
    Allocated,
    Fulfilled,
    Cancelled,
    Refunded,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Created,
        Stage::Paid,
        Stage::Released,
        Stage::Allocated,
        Stage::Fulfilled,
        Stage::Cancelled,
        Stage::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Created => "created",
            Stage::Paid => "paid",
            Stage::Released => "released",
            Stage::Allocated => "allocated",
            Stage::Fulfilled => "fulfilled",
            Stage::Cancelled => "cancelled",
            Stage::Refunded => "refunded",
        }
    }

    /// The stage an event speaks for. An update edits the order as created, so it belongs to
    /// whoever owns `created`.
    pub fn of(kind: EventKind) -> Stage {
        match kind {
            EventKind::OrderCreated | EventKind::OrderUpdated => Stage::Created,
            EventKind::OrderPaid => Stage::Paid,
            EventKind::OrderCancelled => Stage::Cancelled,
            EventKind::FulfillmentCreated => Stage::Fulfilled,
            EventKind::RefundCreated => Stage::Refunded,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[ownership]` table: stage → owner. A stage left out is reported by `contract check`,
/// not refused at load, so a contract written before ownership existed still runs.
pub type Ownership = BTreeMap<Stage, Owner>;

/// Who owns a stage: one system for every order (`paid = "stripe"`), or, written as a list
/// (`created = ["shop", "amazon"]`), each order's own channel among those systems: the shop owns
/// its orders, Amazon owns its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    System(String),
    EachChannel(Vec<String>),
}

impl Owner {
    /// Every system named.
    pub fn systems(&self) -> &[String] {
        match self {
            Owner::System(name) => std::slice::from_ref(name),
            Owner::EachChannel(names) => names,
        }
    }

    pub fn includes(&self, system: &str) -> bool {
        self.systems().iter().any(|s| s == system)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::System(name) => f.write_str(name),
            Owner::EachChannel(names) => write!(f, "each order's channel ({})", names.join(", ")),
        }
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Owner, D::Error> {
        struct OwnerVisitor;

        impl<'de> Visitor<'de> for OwnerVisitor {
            type Value = Owner;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a system name, or a list of channel systems (each owns its own orders)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Owner, E> {
                Ok(Owner::System(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Owner, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Owner::EachChannel(names))
            }
        }

        deserializer.deserialize_any(OwnerVisitor)
    }
}
