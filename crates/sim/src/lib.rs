//! Simulated systems and the history checker. A simulated system's behaviour and faults live
//! in one implementation ([`system::MockSystem`]); the `http` transport serves it on loopback
//! for the real binary (`handoff mock`), and tests can call it in-process.

pub mod checker;
pub mod demo;
pub mod dialect;
pub mod http;
pub mod oauth1;
pub mod profile;
pub mod runner;
pub mod system;
pub mod target;
pub mod vendors;
pub mod week;
pub mod world;

pub use checker::{Checker, Violation};
pub use dialect::{Dialect, HttpRequest, HttpResponse, Routed};
pub use system::{Applied, Faults, MockSystem, Reply, Request};
