//! Vendor dialects: each vendor's wire format in front of a [`crate::MockSystem`].

pub mod amazon;
