//! Matching without a reference: a payment or an ERP record that names no order is tied to one
//! by amount, email, lines and time, with a stated confidence. Both drivers use these scores.

use handoff_model::Money;
use jiff::{SignedDuration, Timestamp};

/// A payment captured this long before or after an order is no longer a candidate for it.
pub const PAYMENT_WINDOW: SignedDuration = SignedDuration::from_hours(1);
/// An ERP record created this long after the order is no longer a candidate for it.
pub const ERP_WINDOW: SignedDuration = SignedDuration::from_hours(72);

/// What is known of either side of a fuzzy match.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub amount: Money,
    pub email: Option<&'a str>,
    pub at: Timestamp,
    pub lines: Option<u32>,
}

/// How sure it is that a payment belongs to an order; `None` when it cannot.
pub fn payment(order: Keys<'_>, payment: Keys<'_>) -> Option<f32> {
    if order.amount != payment.amount || payment.at.duration_since(order.at).abs() > PAYMENT_WINDOW {
        return None;
    }
    email_score(order.email, payment.email, 0.95, 0.6)
}

/// How sure it is that an ERP record without a reference was made for an order.
pub fn erp_record(order: Keys<'_>, record: Keys<'_>) -> Option<f32> {
    let after = record.at.duration_since(order.at);
    if order.amount != record.amount || after < -PAYMENT_WINDOW || after > ERP_WINDOW {
        return None;
    }
    let lines = match (order.lines, record.lines) {
        (Some(a), Some(b)) if a != b => return None,
        (Some(_), Some(_)) => 0.05,
        _ => 0.0,
    };
    email_score(order.email, record.email, 0.9, 0.55).map(|s| s + lines)
}

/// Same email: `both`; one side has none: `one`; different: no match.
fn email_score(a: Option<&str>, b: Option<&str>, both: f32, one: f32) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) if a.trim().eq_ignore_ascii_case(b.trim()) => Some(both),
        (Some(_), Some(_)) => None,
        _ => Some(one),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(amount: &str, email: Option<&'static str>, at: &str) -> Keys<'static> {
        Keys {
            amount: Money::new(amount.parse().unwrap(), "EUR".parse().unwrap()),
            email,
            at: at.parse().unwrap(),
            lines: Some(2),
        }
    }

    #[test]
    fn a_payment_matches_by_amount_email_and_time() {
        let order = keys("28.58", Some("ada@example.com"), "2026-11-26T10:00:00Z");
        let paid = keys("28.58", Some("ADA@example.com "), "2026-11-26T10:00:30Z");
        assert_eq!(payment(order, paid), Some(0.95));
        assert_eq!(payment(order, Keys { email: None, ..paid }), Some(0.6));
        assert_eq!(payment(order, keys("28.58", Some("bob@example.com"), "2026-11-26T10:00:30Z")), None);
        assert_eq!(payment(order, keys("28.59", Some("ada@example.com"), "2026-11-26T10:00:30Z")), None);
        assert_eq!(payment(order, keys("28.58", Some("ada@example.com"), "2026-11-26T12:00:00Z")), None);
    }

    #[test]
    fn an_erp_record_needs_the_same_lines() {
        let order = keys("28.58", Some("ada@example.com"), "2026-11-26T10:00:00Z");
        let record = keys("28.58", Some("ada@example.com"), "2026-11-26T11:00:00Z");
        assert_eq!(erp_record(order, record), Some(0.95));
        assert_eq!(erp_record(order, Keys { lines: Some(3), ..record }), None);
        assert_eq!(erp_record(order, keys("28.58", None, "2026-11-30T11:00:00Z")), None);
    }
}
