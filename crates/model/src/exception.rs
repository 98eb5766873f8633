//! Exceptions: divergences between systems, named by their failure pattern.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    MissingOrder,
    StatusVoid,
    DuplicateDraft,
    TransformMismatch,
    OrphanedPayment,
    RollbackGap,
    DeadDelivery,
}

impl Pattern {
    pub const ALL: [Pattern; 7] = [
        Pattern::MissingOrder,
        Pattern::DuplicateDraft,
        Pattern::StatusVoid,
        Pattern::RollbackGap,
        Pattern::TransformMismatch,
        Pattern::OrphanedPayment,
        Pattern::DeadDelivery,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Pattern::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The pattern's name as people say it.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::MissingOrder => "Missing Order",
            Pattern::StatusVoid => "Status Void",
            Pattern::DuplicateDraft => "Duplicate Draft",
            Pattern::TransformMismatch => "Transform Mismatch",
            Pattern::OrphanedPayment => "Orphaned Payment",
            Pattern::RollbackGap => "Rollback Gap",
            Pattern::DeadDelivery => "Dead Delivery",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::MissingOrder => "missing_order",
            Pattern::StatusVoid => "status_void",
            Pattern::DuplicateDraft => "duplicate_draft",
            Pattern::TransformMismatch => "transform_mismatch",
            Pattern::OrphanedPayment => "orphaned_payment",
            Pattern::RollbackGap => "rollback_gap",
            Pattern::DeadDelivery => "dead_delivery",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    Open,
    Acknowledged,
    Resolved,
    AutoResolved,
    Ignored,
}

impl ExceptionState {
    pub const ALL: [ExceptionState; 5] = [
        ExceptionState::Open,
        ExceptionState::Acknowledged,
        ExceptionState::Resolved,
        ExceptionState::AutoResolved,
        ExceptionState::Ignored,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        ExceptionState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// What a person may do with an exception: acknowledge an open one; resolve or ignore one
    /// not yet closed. Auto-resolution and reopening belong to the rules.
    pub fn person_may_move(self, to: ExceptionState) -> bool {
        use ExceptionState::*;
        matches!((self, to), (Open, Acknowledged) | (Open | Acknowledged, Resolved | Ignored))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionState::Open => "open",
            ExceptionState::Acknowledged => "acknowledged",
            ExceptionState::Resolved => "resolved",
            ExceptionState::AutoResolved => "auto_resolved",
            ExceptionState::Ignored => "ignored",
        }
    }
}
