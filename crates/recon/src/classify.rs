//! Each ledger through the rules (`handoff_rules::evaluate`, the live engine's own), and each
//! finding as one exception record with its evidence and suggested action.

use handoff_model::{Money, Pattern};
use handoff_rules::{Action, Deadlines, Finding, Ledger, evaluate};
use jiff::Timestamp;
use serde::Serialize;

/// One exception found in the exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exception {
    pub pattern: Pattern,
    /// The finding's identity, as the live rules key it (`--import` raises it under these, so
    /// the hub's rules resolve it when its cause goes).
    #[serde(skip)]
    pub ledger_key: String,
    #[serde(skip)]
    pub subject: String,
    /// The order's reference as its storefront or marketplace export shows it (or, when no
    /// channel export was given, as the ERP record names it); `None` for a payment that stands
    /// alone.
    pub order_ref: Option<String>,
    pub channel: Option<String>,
    /// The payment involved: the one that stands alone, or the one that paid a missing order.
    pub payment_id: Option<String>,
    /// The ERP records involved.
    pub erp_ids: Vec<String>,
    /// The field that disagrees, for a Transform Mismatch.
    pub field: Option<&'static str>,
    /// The money at stake: the order's total, or the payment's amount.
    pub amount: Option<Money>,
    pub evidence: String,
    /// What to do, in words.
    pub action: String,
    /// What to do, for a machine: the rules' action.
    pub action_detail: Action,
    /// `reference` when every record behind the finding names the order; `fuzzy` when one was
    /// matched by amount, email and time.
    pub matched_by: &'static str,
    pub confidence: f32,
    /// When the order was placed (or the payment captured).
    pub occurred_at: Option<Timestamp>,
    /// When the rule's deadline passed.
    pub due_at: Timestamp,
}

/// The findings of one ledger as of `as_of`, as exception records.
pub fn classify(
    ledger: &Ledger,
    deadlines: &Deadlines,
    as_of: Timestamp,
    occurred_at: Option<Timestamp>,
    out: &mut Vec<Exception>,
) {
    let verdict = evaluate(ledger, deadlines, as_of);
    out.extend(verdict.findings.into_iter().map(|f| exception(ledger, f, occurred_at)));
}

fn exception(l: &Ledger, f: Finding, occurred_at: Option<Timestamp>) -> Exception {
    let orphan = f.pattern == Pattern::OrphanedPayment;
    let mut confidence = f.confidence;
    let (payment_id, amount) = match &f.action {
        Action::RefundPayment { payment_id } => {
            let p = l.payments.iter().find(|p| p.payment_id == *payment_id);
            (Some(payment_id.clone()), p.map(|p| p.amount))
        }
        _ if f.pattern == Pattern::MissingOrder => {
            let paid = l.payments.iter().find(|p| !p.refunded);
            // A missing order is sure; the payment as its evidence is as sure as its match.
            (paid.map(|p| p.payment_id.clone()), l.total)
        }
        _ => (None, l.total),
    };
    let erp_ids: Vec<String> = match &f.action {
        Action::SendCancellation { records } => records.clone(),
        Action::CancelDuplicates { keep, cancel } => std::iter::once(keep).chain(cancel).cloned().collect(),
        Action::ReviewMapping => vec![f.subject.split(':').next().unwrap_or_default().to_owned()],
        _ => l.live_records().map(|r| r.id.clone()).collect(),
    };
    // A finding over records matched by fuzzy keys is as sure as the least sure of them.
    for r in l.erp.iter().filter(|r| erp_ids.contains(&r.id)) {
        confidence = confidence.min(r.confidence);
    }
    let mut evidence = f.detail.clone();
    let fuzzy: Vec<String> = l
        .erp
        .iter()
        .filter(|r| r.confidence < 1.0 && erp_ids.contains(&r.id))
        .map(|r| format!("ERP record {} names no order; matched by amount, email and time ({:.2})", r.id, r.confidence))
        .chain(l.payments.iter().filter(|p| p.confidence < 1.0 && Some(&p.payment_id) == payment_id.as_ref()).map(
            |p| {
                format!(
                    "payment {} names no order; matched by amount, email and time ({:.2})",
                    p.payment_id, p.confidence
                )
            },
        ))
        .collect();
    if !fuzzy.is_empty() {
        evidence = format!("{evidence}; {}", fuzzy.join("; "));
    }
    if orphan && payment_id.as_ref() != Some(&l.order_ref) {
        evidence = format!("{evidence}; the payment names order {}, which no export holds", l.order_ref);
    }
    Exception {
        pattern: f.pattern,
        ledger_key: l.order_ref.clone(),
        subject: f.subject.clone(),
        order_ref: (!orphan).then(|| l.order_ref.clone()),
        channel: l.channel.clone(),
        payment_id,
        erp_ids,
        field: f.field,
        amount,
        evidence,
        action: action_words(&f.action),
        action_detail: f.action,
        matched_by: if confidence < 1.0 { "fuzzy" } else { "reference" },
        confidence,
        occurred_at,
        due_at: f.due_at,
    }
}

pub fn action_kind(a: &Action) -> &'static str {
    match a {
        Action::CreateErpOrder => "create_erp_order",
        Action::SendFulfillmentToChannel => "send_fulfillment_to_channel",
        Action::FulfilInErp => "fulfil_in_erp",
        Action::SendCancellation { .. } => "send_cancellation",
        Action::CancelDuplicates { .. } => "cancel_duplicates",
        Action::ReviewMapping => "review_mapping",
        Action::RefundPayment { .. } => "refund_payment",
    }
}

fn action_words(a: &Action) -> String {
    match a {
        Action::CreateErpOrder => "create the order in the ERP".into(),
        Action::SendFulfillmentToChannel => "send the ERP's fulfillment to the channel".into(),
        Action::FulfilInErp => "fulfil the ERP record, as the channel shipped".into(),
        Action::SendCancellation { records } => format!("cancel {} in the ERP", records.join(", ")),
        Action::CancelDuplicates { keep, cancel } => format!("keep {keep}, cancel {}", cancel.join(", ")),
        Action::ReviewMapping => "fix the mapping (or the ERP record), then replay".into(),
        Action::RefundPayment { payment_id } => format!("refund or void {payment_id} (with approval)"),
    }
}
