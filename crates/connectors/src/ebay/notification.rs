//! What a verified eBay notification becomes. The signature is checked on the raw bytes
//! before anything reads the body. eBay's Notification API carries no order bodies: the
//! order topics (`ORDER_CONFIRMATION`, `ITEM_MARKED_SHIPPED`) only name an order id, and
//! `MARKETPLACE_ACCOUNT_DELETION` concerns a user's data, not an order, so every verified
//! notification is acknowledged and the poller stays the order intake.

use serde_json::Value;

use crate::SourceError;

/// A verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Answer 204 and store nothing.
    Acknowledged { topic: String, notification_id: Option<String> },
}

/// Verifies `X-EBAY-SIGNATURE` (`header`) over `body` with the key eBay published for its
/// `kid`, then reads the envelope.
pub fn inbound(header: Option<&str>, body: &[u8], public_key_pem: &str) -> Result<Notification, SourceError> {
    super::verify(header, body, public_key_pem)?;
    let v: Value = serde_json::from_slice(body)?;
    let topic = v["metadata"]["topic"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| crate::http_json::invalid("metadata.topic", "is missing"))?;
    let notification_id = v["notification"]["notificationId"].as_str().map(str::to_owned);
    Ok(Notification::Acknowledged { topic: topic.to_owned(), notification_id })
}
