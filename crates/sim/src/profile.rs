//! Fault profiles: how often each thing goes wrong in a simulated run.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultProfile {
    pub name: String,
    /// ERP side, per request: applied then the answer lost; lost unapplied; answered after
    /// the client's timeout and applied only then; applied then 503; 429 with Retry-After.
    pub lost_ack: f64,
    pub lost_request: f64,
    pub slow_ack: f64,
    pub error_after_apply: f64,
    pub throttle: f64,
    /// Webhook side, per event: delivered twice; three times; moved after later events of
    /// its order; delivered hours late.
    pub duplicate: f64,
    pub triplicate: f64,
    pub reordered: f64,
    pub late: f64,
    /// A delivery captured and re-sent verbatim 10 min to 2 h later, past the signature
    /// tolerance: it must be refused.
    pub replay: f64,
    /// Orders that lack a field the ERPs require (they must end as dead letters, never sent
    /// blindly again).
    pub missing_field: f64,
    /// Hub crashes during the run, at random moments (including between send and record).
    pub crashes: u32,
    /// One ERP outage of this many hours.
    pub outage_hours: u32,
}

impl FaultProfile {
    /// The profile the test suite runs: 20 % lost acks, 5 % slow acks, 5 % duplicates,
    /// 20 % reordered, 3 crashes, one 6-hour ERP outage, and a little of everything else.
    pub fn default_profile() -> Self {
        FaultProfile {
            name: "default".into(),
            lost_ack: 0.20,
            lost_request: 0.02,
            slow_ack: 0.05,
            error_after_apply: 0.02,
            throttle: 0.02,
            duplicate: 0.05,
            triplicate: 0.01,
            reordered: 0.20,
            late: 0.02,
            replay: 0.01,
            missing_field: 0.01,
            crashes: 3,
            outage_hours: 6,
        }
    }

    /// Nothing goes wrong: the clean run that must raise nothing.
    pub fn none() -> Self {
        FaultProfile {
            name: "none".into(),
            lost_ack: 0.0,
            lost_request: 0.0,
            slow_ack: 0.0,
            error_after_apply: 0.0,
            throttle: 0.0,
            duplicate: 0.0,
            triplicate: 0.0,
            reordered: 0.0,
            late: 0.0,
            replay: 0.0,
            missing_field: 0.0,
            crashes: 0,
            outage_hours: 0,
        }
    }

    /// Everything at once, more often.
    pub fn harsh() -> Self {
        FaultProfile {
            name: "harsh".into(),
            lost_ack: 0.35,
            lost_request: 0.10,
            slow_ack: 0.10,
            error_after_apply: 0.10,
            throttle: 0.10,
            duplicate: 0.15,
            triplicate: 0.05,
            reordered: 0.40,
            late: 0.05,
            replay: 0.03,
            missing_field: 0.03,
            crashes: 10,
            outage_hours: 12,
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::default_profile()),
            "none" => Some(Self::none()),
            "harsh" => Some(Self::harsh()),
            _ => None,
        }
    }
}
