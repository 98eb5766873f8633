//! Vendor dialects of the simulated systems: each speaks one vendor's API in front of a
//! [`crate::MockSystem`].

pub mod amazon;
pub mod ebay;
pub mod netsuite;
pub mod odoo;
pub mod shopify;
pub mod suiteql;
pub mod woocommerce;
