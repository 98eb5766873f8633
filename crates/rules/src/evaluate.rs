//! The rules: one pure function from a ledger, the deadlines and a time to what diverges.

use handoff_model::Pattern;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Deadlines, ErpState, Ledger};

/// What a person (or an auto-resolve policy) can do about a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateErpOrder,
    /// Send the fulfillment the ERP holds back to the channel.
    SendFulfillmentToChannel,
    /// The channel shipped; the ERP record still waits to be fulfilled.
    FulfilInErp,
    /// Close these ERP records, as the channel did.
    SendCancellation {
        records: Vec<String>,
    },
    /// Keep the first record, cancel the others.
    CancelDuplicates {
        keep: String,
        cancel: Vec<String>,
    },
    /// Fix the mapping (or the ERP record) so the two agree, then replay.
    ReviewMapping,
    /// Refund or void the payment; never without a person's approval.
    RefundPayment {
        payment_id: String,
    },
}

/// One divergence the rules found in one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub pattern: Pattern,
    /// What within the order diverges (records, payment, field): with the pattern, the
    /// finding's identity, so the same cause is raised once and resolved once.
    pub subject: String,
    /// When the deadline passed (or the divergence appeared, for rules without one).
    pub due_at: Timestamp,
    /// The field that disagrees, for a Transform Mismatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    pub detail: String,
    pub action: Action,
    /// How sure the match behind the finding is: 1.0 by reference, lower by fuzzy keys.
    pub confidence: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    /// The earliest deadline not yet passed: evaluate again then, if nothing happens sooner.
    pub next_check: Option<Timestamp>,
}

/// Amounts that differ by no more than this are the same total (rounding across systems).
const TOTAL_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// Evaluates every rule over one ledger as of `now`.
pub fn evaluate(l: &Ledger, d: &Deadlines, now: Timestamp) -> Verdict {
    let mut v = Verdict::default();
    let due = |v: &mut Verdict, at: Timestamp, finding: &dyn Fn() -> Finding| {
        if now >= at {
            v.findings.push(finding());
        } else {
            v.next_check = Some(v.next_check.map_or(at, |n| n.min(at)));
        }
    };

    let quiet = !l.dead_letters.is_empty();
    if let Some(placed) = l.placed_at
        && l.closed_at.is_none()
        && l.erp.is_empty()
        && !quiet
    {
        let at = placed + d.erp_order;
        due(&mut v, at, &|| {
            let paid: Vec<&str> = l.payments.iter().map(|p| p.payment_id.as_str()).collect();
            let detail = match paid.is_empty() {
                true => format!("placed in {} at {placed}, no ERP order by {at}", channel(l)),
                false => {
                    format!("placed in {} at {placed} and paid ({}), no ERP order by {at}", channel(l), paid.join(", "))
                }
            };
            finding(Pattern::MissingOrder, "", at, detail, Action::CreateErpOrder, 1.0)
        });
    }

    if l.placed_at.is_none() && l.erp.is_empty() {
        for p in l.payments.iter().filter(|p| !p.refunded) {
            let at = p.captured_at + d.payment;
            due(&mut v, at, &|| {
                let detail = format!(
                    "{} {} captured at {}, no order in any channel or the ERP by {at}",
                    p.payment_id, p.amount, p.captured_at
                );
                let action = Action::RefundPayment { payment_id: p.payment_id.clone() };
                finding(Pattern::OrphanedPayment, &p.payment_id, at, detail, action, p.confidence)
            });
        }
    }

    let live: Vec<_> = l.live_records().collect();
    let mut systems: Vec<&str> = match live.len() {
        0 | 1 => Vec::new(),
        _ => live.iter().map(|r| r.system.as_str()).collect(),
    };
    systems.sort_unstable();
    systems.dedup();
    for system in systems {
        let mut ordered: Vec<_> = live.iter().filter(|r| r.system == system).collect();
        if ordered.len() < 2 {
            continue;
        }
        // The record that names the reference, then the oldest, is the one to keep.
        ordered.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.seen_at.cmp(&b.seen_at)));
        let ids: Vec<String> = ordered.iter().map(|r| r.id.clone()).collect();
        let at = ordered.iter().map(|r| r.seen_at).max().expect("two records");
        let confidence = ordered.iter().map(|r| r.confidence).fold(1.0, f32::min);
        let detail = format!("{} live records in {system} for one order: {}", ids.len(), ids.join(", "));
        let action = Action::CancelDuplicates { keep: ids[0].clone(), cancel: ids[1..].to_vec() };
        due(&mut v, at, &|| {
            finding(Pattern::DuplicateDraft, &ids.join(","), at, detail.clone(), action.clone(), confidence)
        });
    }

    if l.closed_at.is_none()
        && l.channel_fulfilled_at.is_none()
        && l.placed_at.is_some()
        && !quiet
        && let Some(shipped) = l.erp.iter().filter_map(|r| r.fulfilled_at).min()
    {
        let at = shipped + d.fulfillment;
        due(&mut v, at, &|| {
            let detail = format!("fulfilled in the ERP at {shipped}, not in {} by {at}", channel(l));
            finding(Pattern::StatusVoid, "channel", at, detail, Action::SendFulfillmentToChannel, 1.0)
        });
    }
    if let Some(shipped) = l.channel_fulfilled_at
        && !live.is_empty()
        && live.iter().all(|r| r.state == ErpState::Open)
    {
        let at = shipped + d.fulfillment;
        due(&mut v, at, &|| {
            let detail = format!("fulfilled in {} at {shipped}, still open in the ERP at {at}", channel(l));
            finding(Pattern::StatusVoid, "erp", at, detail, Action::FulfilInErp, 1.0)
        });
    }

    if let Some(closed) = l.closed_at
        && !live.is_empty()
        && !quiet
    {
        let at = closed + d.cancellation;
        let records: Vec<String> = live.iter().map(|r| r.id.clone()).collect();
        due(&mut v, at, &|| {
            let states: Vec<String> = live.iter().map(|r| format!("{} {:?}", r.id, r.state).to_lowercase()).collect();
            let detail = format!(
                "cancelled or refunded in {} at {closed}; in the ERP by {at}: {}",
                channel(l),
                states.join(", ")
            );
            let action = Action::SendCancellation { records: records.clone() };
            finding(Pattern::RollbackGap, &records.join(","), at, detail, action, 1.0)
        });
    }

    if let Some(expected) = l.total {
        for r in &live {
            let Some(got) = r.total else { continue };
            let mismatch = if got.currency != expected.currency {
                Some((
                    "currency",
                    format!("ERP record {} is in {}, the order in {}", r.id, got.currency, expected.currency),
                ))
            } else if (got.amount - expected.amount).abs() > TOTAL_TOLERANCE {
                Some(("total", format!("ERP record {} totals {got}, the order {expected}", r.id)))
            } else {
                match (r.lines, l.lines) {
                    (Some(a), Some(b)) if a != b => {
                        Some(("lines", format!("ERP record {} has {a} lines, the order {b}", r.id)))
                    }
                    _ => None,
                }
            };
            if let Some((field, detail)) = mismatch {
                // An update on its way to the ERP is not a mismatch until the deadline.
                let at = r.seen_at.max(l.updated_at.unwrap_or(r.seen_at)) + d.erp_order;
                let subject = format!("{}:{field}", r.id);
                due(&mut v, at, &|| {
                    let mut f = finding(
                        Pattern::TransformMismatch,
                        &subject,
                        at,
                        detail.clone(),
                        Action::ReviewMapping,
                        r.confidence,
                    );
                    f.field = Some(field);
                    f
                });
            }
        }
    }
    v
}

fn channel(l: &Ledger) -> &str {
    l.channel.as_deref().unwrap_or("the channel")
}

fn finding(
    pattern: Pattern,
    subject: &str,
    due_at: Timestamp,
    detail: String,
    action: Action,
    confidence: f32,
) -> Finding {
    Finding { pattern, subject: subject.to_owned(), due_at, field: None, detail, action, confidence }
}
