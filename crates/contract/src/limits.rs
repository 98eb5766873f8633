//! How hard the hub may press one system: requests in flight at once and requests per second.
//! Each connector has safe defaults taken from its vendor's documented limits; a system's
//! `max_in_flight` and `rate` in the contract override them.

use crate::{ConnectorKind, System};

/// One system's limits, as the dispatcher applies them to the commands it sends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests to the system in flight at once.
    pub max_in_flight: usize,
    /// Requests per second, at most (with a burst of one second's worth).
    pub rate: u32,
}

impl ConnectorKind {
    /// The limits a system of this kind gets when the contract sets none.
    pub fn default_limits(self) -> Limits {
        let (max_in_flight, rate) = match self {
            // An account's concurrency limit is 5 on the smallest service tier.
            ConnectorKind::Netsuite => (5, 10),
            // A small Odoo runs a handful of workers; each request holds one.
            ConnectorKind::Odoo => (4, 10),
            // The Admin REST API's leaky bucket drains 2 requests a second.
            ConnectorKind::Shopify => (2, 2),
            ConnectorKind::Woocommerce => (4, 5),
            // confirmShipment: 2 requests a second.
            ConnectorKind::Amazon => (2, 2),
            ConnectorKind::Ebay => (4, 5),
            ConnectorKind::Stripe => (4, 25),
            // Handoff's own protocol, in front of a merchant's system.
            ConnectorKind::HttpJson => (64, 1000),
        };
        Limits { max_in_flight, rate }
    }
}

impl System {
    /// This system's limits: the contract's, else its connector's defaults.
    pub fn limits(&self) -> Limits {
        let defaults = self.connector.default_limits();
        Limits {
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
            rate: self.rate.unwrap_or(defaults.rate),
        }
    }
}
