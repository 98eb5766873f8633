//! eBay: orders read from the Sell Fulfillment API by a poller, shipping fulfillments written
//! back to it, and the Notification API endpoint (its challenge and `X-EBAY-SIGNATURE`).
//! eBay's Notification API sends no order bodies, so the poller is the order intake.

mod auth;
mod keys;
mod notification;
mod order;
mod poller;
mod signature;
mod target;

pub use keys::{KeyError, PublicKeys};
pub use notification::{Notification, inbound};
pub use order::{EbayOrder, order};
pub use poller::EbayPoller;
pub(crate) use poller::reread;
pub use signature::{challenge_response, key_id, verify};
pub use target::{EbayTarget, classify};

/// The API version stamped on each event read from it.
const API_VERSION: &str = "sell/fulfillment/v1";

/// The Sell Fulfillment API's base path.
const FULFILLMENT: &str = "/sell/fulfillment/v1";
