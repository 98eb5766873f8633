//! The history checker: judges a run by what the sources were told (the events acknowledged
//! to them) against what the targets applied. Every simulation and crash test uses it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::system::{Applied, Collection};

/// What a source was acknowledged for one order, built up as the run goes.
#[derive(Debug, Default, Clone)]
struct Expected {
    created: bool,
    cancelled: bool,
    fulfillments: Vec<String>,
    refunds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged event never took effect at its target.
    Lost { order_ref: String, what: String },
    /// More than one effect for one intent.
    Duplicate { order_ref: String, by: &'static str, count: usize },
    /// A target applied an order's writes out of causal order.
    OutOfOrder { order_ref: String, detail: String },
    /// A rule of the conversation broken: a retry sooner than `Retry-After`, a stale replay
    /// accepted.
    Protocol { order_ref: String, detail: String },
    /// The backlog did not drain in time after the faults stopped, or too little got through
    /// while they lasted.
    Liveness { detail: String },
}

impl Violation {
    pub fn order_ref(&self) -> Option<&str> {
        match self {
            Violation::Lost { order_ref, .. }
            | Violation::Duplicate { order_ref, .. }
            | Violation::OutOfOrder { order_ref, .. }
            | Violation::Protocol { order_ref, .. } => Some(order_ref),
            Violation::Liveness { .. } => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Lost { .. } => "lost",
            Violation::Duplicate { .. } => "duplicate",
            Violation::OutOfOrder { .. } => "out_of_order",
            Violation::Protocol { .. } => "protocol",
            Violation::Liveness { .. } => "liveness",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Lost { order_ref, what } => write!(f, "lost: {order_ref}: {what}"),
            Violation::Duplicate { order_ref, by, count } => {
                write!(f, "duplicate: {order_ref}: {count} records by {by}")
            }
            Violation::OutOfOrder { order_ref, detail } => write!(f, "out of order: {order_ref}: {detail}"),
            Violation::Protocol { order_ref, detail } => write!(f, "protocol: {order_ref}: {detail}"),
            Violation::Liveness { detail } => write!(f, "liveness: {detail}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Checker {
    expected: BTreeMap<String, Expected>,
}

impl Checker {
    pub fn new() -> Self {
        Checker::default()
    }

    /// The hub answered 2xx to an `order.created` (or an update standing in for it).
    pub fn acked_create(&mut self, order_ref: &str) {
        self.expected.entry(order_ref.to_owned()).or_default().created = true;
    }

    pub fn acked_cancel(&mut self, order_ref: &str) {
        self.expected.entry(order_ref.to_owned()).or_default().cancelled = true;
    }

    /// The hub acknowledged a fulfillment that must reach the other side.
    pub fn acked_fulfillment(&mut self, order_ref: &str, fulfillment_id: &str) {
        self.expected.entry(order_ref.to_owned()).or_default().fulfillments.push(fulfillment_id.to_owned());
    }

    /// The hub acknowledged a refund that must reach the ERP.
    pub fn acked_refund(&mut self, order_ref: &str, refund_id: &str) {
        self.expected.entry(order_ref.to_owned()).or_default().refunds.push(refund_id.to_owned());
    }

    /// Checks an order target's history (creates, updates, cancels of orders).
    pub fn check_orders(&self, applied: &[Applied]) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut per_order: HashMap<&str, Vec<&Applied>> = HashMap::new();
        let mut per_key: HashMap<&str, usize> = HashMap::new();
        for a in applied.iter().filter(|a| a.collection == Collection::Orders) {
            per_order.entry(a.external_ref.as_str()).or_default().push(a);
            if a.op == "create"
                && let Some(key) = &a.idempotency_key
            {
                *per_key.entry(key.as_str()).or_default() += 1;
            }
        }
        for (key, count) in per_key {
            if count > 1 {
                violations.push(Violation::Duplicate { order_ref: key.to_owned(), by: "idempotency key", count });
            }
        }
        for (order_ref, ops) in &per_order {
            check_order_history(order_ref, ops, &mut violations);
        }
        for (order_ref, expected) in &self.expected {
            let ops = per_order.get(order_ref.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let creates = ops.iter().filter(|a| a.op == "create").count();
            let cancels = ops.iter().filter(|a| a.op == "cancel").count();
            match (expected.created, expected.cancelled) {
                (true, false) if creates == 0 => violations
                    .push(Violation::Lost { order_ref: order_ref.clone(), what: "order never created".into() }),
                // Cancelled: either the create was superseded (nothing sent) or both arrived.
                (true, true) if creates == 1 && cancels == 0 => violations
                    .push(Violation::Lost { order_ref: order_ref.clone(), what: "cancellation never arrived".into() }),
                _ => {}
            }
        }
        violations.sort_by_key(Violation::to_string);
        violations
    }

    /// Checks a fulfillment target's history: each acknowledged fulfillment exactly once.
    pub fn check_fulfillments(&self, applied: &[Applied]) -> Vec<Violation> {
        self.check_children(applied, Collection::Fulfillments, "fulfillment", |e| &e.fulfillments)
    }

    /// Checks a refund target's history: each acknowledged refund exactly once.
    pub fn check_refunds(&self, applied: &[Applied]) -> Vec<Violation> {
        self.check_children(applied, Collection::Refunds, "refund", |e| &e.refunds)
    }

    /// Records created under an order (`ORDER/what/ID`): each expected one exactly once.
    fn check_children(
        &self,
        applied: &[Applied],
        collection: Collection,
        what: &str,
        ids: impl Fn(&Expected) -> &Vec<String>,
    ) -> Vec<Violation> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for a in applied.iter().filter(|a| a.collection == collection && a.op == "create") {
            *counts.entry(a.external_ref.as_str()).or_default() += 1;
        }
        let mut violations = Vec::new();
        for (order_ref, expected) in &self.expected {
            for id in ids(expected) {
                let external_ref = format!("{order_ref}/{what}/{id}");
                match counts.get(external_ref.as_str()).copied().unwrap_or(0) {
                    0 => {
                        violations.push(Violation::Lost { order_ref: order_ref.clone(), what: format!("{what} {id}") })
                    }
                    1 => {}
                    count => violations.push(Violation::Duplicate {
                        order_ref: external_ref,
                        by: "external reference",
                        count,
                    }),
                }
            }
        }
        violations
    }
}

/// One order's writes at a target: at most one create, first; versions never go back; no
/// write after the cancel; at most one cancel.
fn check_order_history(order_ref: &str, ops: &[&Applied], violations: &mut Vec<Violation>) {
    let creates = ops.iter().filter(|a| a.op == "create").count();
    if creates > 1 {
        violations.push(Violation::Duplicate {
            order_ref: order_ref.to_owned(),
            by: "external reference",
            count: creates,
        });
    }
    let cancels = ops.iter().filter(|a| a.op == "cancel").count();
    if cancels > 1 {
        violations.push(Violation::Duplicate { order_ref: order_ref.to_owned(), by: "cancellation", count: cancels });
    }
    let out_of_order = |detail: String| Violation::OutOfOrder { order_ref: order_ref.to_owned(), detail };
    if let Some(first) = ops.first()
        && first.op != "create"
    {
        violations.push(out_of_order(format!("{} applied before the create", first.op)));
    }
    let mut last_version = None;
    let mut cancelled = false;
    for a in ops {
        if cancelled && a.op != "cancel" {
            violations.push(out_of_order(format!("{} applied after the cancel", a.op)));
        }
        cancelled |= a.op == "cancel";
        if a.op != "cancel"
            && let Some(v) = a.version
        {
            if last_version.is_some_and(|last| v < last) {
                violations.push(out_of_order(format!("version {v} applied after {}", last_version.unwrap_or(0))));
            }
            last_version = Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(seq: u64, op: &str, ext: &str, version: u64, key: &str) -> Applied {
        Applied {
            seq,
            op: op.into(),
            collection: Collection::Orders,
            external_ref: ext.into(),
            record_id: format!("r{seq}"),
            version: Some(version),
            idempotency_key: Some(key.into()),
        }
    }

    #[test]
    fn a_clean_history_passes() {
        let mut c = Checker::new();
        c.acked_create("#1");
        c.acked_create("#2");
        c.acked_cancel("#2");
        let log = vec![
            applied(0, "create", "#1", 1, "k1"),
            applied(1, "create", "#2", 1, "k2"),
            applied(2, "cancel", "#2", 2, "c2"),
        ];
        assert_eq!(c.check_orders(&log), vec![]);
    }

    #[test]
    fn the_checker_bites() {
        let mut c = Checker::new();
        c.acked_create("#1");
        c.acked_create("#2");
        c.acked_create("#3");
        let log = vec![
            applied(0, "create", "#1", 1, "k1"),
            applied(1, "create", "#1", 1, "k1"),
            applied(2, "cancel", "#3", 2, "c3"),
            applied(3, "create", "#3", 1, "k3"),
        ];
        let kinds: Vec<_> = c.check_orders(&log).iter().map(Violation::kind).collect();
        assert!(kinds.contains(&"duplicate"), "{kinds:?}");
        assert!(kinds.contains(&"lost"), "{kinds:?}");
        assert!(kinds.contains(&"out_of_order"), "{kinds:?}");
    }
}
