//! What an event says, hashed. Shopify's `updated_at` and WooCommerce's `modified` count whole
//! seconds, so two changes of one order can carry one version: their content tells them apart.
//! Polls dedup on it and intake compares it when the versions tie.

use handoff_model::InboundEvent;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Hex characters kept: 64 bits, far beyond the revisions one order has in one second.
const LEN: usize = 16;

/// The hash of what the event says about its order (kind, order, fulfillment, refund,
/// payment); the envelope (ids, times, versions, how it was read) is left out, so the same
/// change read by webhook and by poll has one fingerprint.
pub fn fingerprint(event: &InboundEvent) -> String {
    Content::of(event).fingerprint
}

/// What an event says, written once: its order (or `null`) as JSON, which its commands'
/// payloads carry, and its fingerprint, hashed from that same text (each wrote the whole order
/// again, most of either's time).
pub struct Content {
    pub order: Box<RawValue>,
    pub fingerprint: String,
}

impl Content {
    pub fn of(event: &InboundEvent) -> Content {
        // Invariant: the canonical types serialise without error (no maps with non-string keys).
        let order = serde_json::value::to_raw_value(&event.order).expect("canonical events serialise");
        // The same bytes as serialising the order in place.
        let body = (event.kind, &*order, &event.fulfillment, &event.refund, &event.payment);
        // Hashed as it is written: no second copy of the order to hash afterwards.
        let mut hash = Hashing(Sha256::new());
        serde_json::to_writer(&mut hash, &body).expect("canonical events serialise");
        let fingerprint = hex::encode(&hash.0.finalize()[..LEN / 2]);
        Content { order, fingerprint }
    }
}

/// SHA-256 fed by a JSON writer (sha2 0.11 is no `io::Write` of its own).
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use handoff_model::{EventKind, ExternalId};

    use super::*;

    fn event(id: &str, kind: EventKind) -> InboundEvent {
        InboundEvent::new(ExternalId::new(id).unwrap(), kind, "#1", "2026-11-26T10:00:00Z".parse().unwrap())
    }

    #[test]
    fn the_envelope_does_not_count_the_content_does() {
        let a = event("webhook-1", EventKind::OrderCancelled);
        let mut b = event("poll:1@2026", EventKind::OrderCancelled);
        b.version = Some(7);
        b.occurred_at = "2026-11-27T10:00:00Z".parse().unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        assert_ne!(fingerprint(&a), fingerprint(&event("webhook-1", EventKind::OrderPaid)));
    }

    /// The order written once gives the fingerprint kept by every build before: the hash of the
    /// tuple (kind, order, fulfillment, refund, payment) serialised whole.
    #[test]
    fn an_order_written_once_gives_the_fingerprint_written_in_place() {
        let created: InboundEvent = serde_json::from_str(include_str!("../../../examples/events/order-created.json"))
            .expect("the example event reads");
        assert!(created.order.is_some());
        let body = (created.kind, &created.order, &created.fulfillment, &created.refund, &created.payment);
        let whole = hex::encode(Sha256::digest(serde_json::to_vec(&body).unwrap()));
        assert_eq!(fingerprint(&created), whole[..LEN]);
        let cancel = event("w-2", EventKind::OrderCancelled);
        let body = (cancel.kind, &cancel.order, &cancel.fulfillment, &cancel.refund, &cancel.payment);
        assert_eq!(fingerprint(&cancel), hex::encode(Sha256::digest(serde_json::to_vec(&body).unwrap()))[..LEN]);
    }
}
