//! Vendors' wire formats in front of the simulated systems, one module per vendor.

pub mod odoo;
